-- billing_list_prices: Databricks system.billing.list_prices, loaded from an
-- exported file (obolus report chargeback --list-prices). A billing record is
-- priced by the row of its sku_name, cloud and usage_unit whose
-- [price_start_time, price_end_time) holds the record's usage_end_time.
CREATE TABLE IF NOT EXISTS billing_list_prices (
    account_id       VARCHAR,
    price_start_time TIMESTAMP NOT NULL,
    price_end_time   TIMESTAMP,
    sku_name         VARCHAR   NOT NULL,
    cloud            VARCHAR   NOT NULL,
    currency_code    VARCHAR   NOT NULL,
    usage_unit       VARCHAR   NOT NULL,
    pricing          STRUCT(
                         "default"      DECIMAL(38,18),
                         promotional    STRUCT("default" DECIMAL(38,18)),
                         effective_list STRUCT("default" DECIMAL(38,18))),
    PRIMARY KEY (sku_name, cloud, usage_unit, currency_code, price_start_time)
);
COMMENT ON TABLE billing_list_prices IS 'List prices per SKU over time, as in Databricks system.billing.list_prices. Key (sku_name, cloud, usage_unit, currency_code, price_start_time): loading a file again replaces those rows.';
COMMENT ON COLUMN billing_list_prices.account_id IS 'Databricks account id.';
COMMENT ON COLUMN billing_list_prices.price_start_time IS 'When the price took effect, UTC, inclusive.';
COMMENT ON COLUMN billing_list_prices.price_end_time IS 'When the price stopped, UTC, exclusive; NULL while in force.';
COMMENT ON COLUMN billing_list_prices.sku_name IS 'SKU priced.';
COMMENT ON COLUMN billing_list_prices.cloud IS 'Cloud the price applies to.';
COMMENT ON COLUMN billing_list_prices.currency_code IS 'Currency of the prices, e.g. USD.';
COMMENT ON COLUMN billing_list_prices.usage_unit IS 'Unit priced, e.g. DBU.';
COMMENT ON COLUMN billing_list_prices.pricing IS 'default is the list price; effective_list.default (list and promotional combined) is the price the bill uses and obolus allocates.';
