-- billing_usage: the columns obolus reads from Databricks system.billing.usage,
-- loaded from exported files (obolus report chargeback --billing-usage). Records
-- are hourly aggregates; those naming an AI Gateway endpoint in usage_metadata
-- are what chargeback reports allocate to invocations. Nested columns keep the
-- Databricks shape, holding only the fields obolus uses.
CREATE TABLE IF NOT EXISTS billing_usage (
    record_id              VARCHAR        PRIMARY KEY,
    account_id             VARCHAR,
    workspace_id           VARCHAR,
    sku_name               VARCHAR        NOT NULL,
    cloud                  VARCHAR        NOT NULL,
    usage_start_time       TIMESTAMP      NOT NULL,
    usage_end_time         TIMESTAMP      NOT NULL,
    usage_date             DATE,
    custom_tags            MAP(VARCHAR, VARCHAR),
    usage_unit             VARCHAR        NOT NULL,
    usage_quantity         DECIMAL(38,18) NOT NULL,
    usage_metadata         STRUCT(
                               endpoint_name                VARCHAR,
                               endpoint_id                  VARCHAR,
                               ai_gateway_endpoint_name     VARCHAR,
                               ai_gateway_endpoint_id       VARCHAR,
                               ai_gateway_destination_model VARCHAR,
                               ai_gateway_destination_id    VARCHAR),
    identity_metadata      STRUCT(run_as VARCHAR, run_by VARCHAR, owned_by VARCHAR, created_by VARCHAR),
    record_type            VARCHAR,
    ingestion_date         DATE,
    billing_origin_product VARCHAR,
    usage_type             VARCHAR
);
COMMENT ON TABLE billing_usage IS 'Hourly billing records as in Databricks system.billing.usage (the columns obolus uses). Loading a file again replaces records with the same record_id.';
COMMENT ON COLUMN billing_usage.record_id IS 'Unique id of the billing record.';
COMMENT ON COLUMN billing_usage.account_id IS 'Databricks account id.';
COMMENT ON COLUMN billing_usage.workspace_id IS 'Workspace the usage ran in.';
COMMENT ON COLUMN billing_usage.sku_name IS 'SKU billed; joins billing_list_prices.sku_name.';
COMMENT ON COLUMN billing_usage.cloud IS 'Cloud (AWS, AZURE, GCP); joins billing_list_prices.cloud.';
COMMENT ON COLUMN billing_usage.usage_start_time IS 'Start of the record''s usage, UTC; records are hourly, and the hour is the allocation bucket.';
COMMENT ON COLUMN billing_usage.usage_end_time IS 'End of the record''s usage, UTC; picks the list price in force.';
COMMENT ON COLUMN billing_usage.usage_date IS 'UTC date of the usage.';
COMMENT ON COLUMN billing_usage.custom_tags IS 'Endpoint tags (never request tags).';
COMMENT ON COLUMN billing_usage.usage_unit IS 'Unit of usage_quantity, e.g. DBU; joins billing_list_prices.usage_unit.';
COMMENT ON COLUMN billing_usage.usage_quantity IS 'Units consumed; negative on a RETRACTION record.';
COMMENT ON COLUMN billing_usage.usage_metadata IS 'ai_gateway_endpoint_id/_name and ai_gateway_destination_model name the bucket (hour × gateway endpoint × model) the cost is allocated in; an empty model spreads the cost over every model of the endpoint in that hour.';
COMMENT ON COLUMN billing_usage.identity_metadata IS 'run_by is the user or service principal that issued the requests.';
COMMENT ON COLUMN billing_usage.record_type IS 'ORIGINAL, RETRACTION or RESTATEMENT; all are summed, so a correction nets out.';
COMMENT ON COLUMN billing_usage.ingestion_date IS 'Date Databricks ingested the record.';
COMMENT ON COLUMN billing_usage.billing_origin_product IS 'Product that produced the usage, e.g. MODEL_SERVING or AI_GATEWAY.';
COMMENT ON COLUMN billing_usage.usage_type IS 'Kind of usage, e.g. TOKEN or COMPUTE_TIME.';
