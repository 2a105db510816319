-- v_billing_hourly: the AI Gateway bill per hour, gateway endpoint, model and
-- SKU, priced at the effective list price in force at each record's end. The
-- cost is computed at 12 decimal places (quantity and price are cast to
-- DECIMAL(38,12) so that their product cannot overflow); obolus report
-- computes the same product exactly.
CREATE OR REPLACE VIEW v_billing_hourly AS
SELECT
    date_trunc('hour', u.usage_start_time)                               AS usage_hour,
    u.workspace_id,
    coalesce(u.usage_metadata.ai_gateway_endpoint_id, '')                AS gateway_endpoint_id,
    coalesce(u.usage_metadata.ai_gateway_endpoint_name, '')              AS gateway_endpoint_name,
    coalesce(u.usage_metadata.ai_gateway_destination_model, '')          AS destination_model,
    u.sku_name,
    u.usage_unit,
    p.currency_code,
    count(*)                                                             AS records,
    sum(u.usage_quantity)                                                AS usage_quantity,
    p.pricing.effective_list."default"                                   AS unit_price,
    sum(CAST(u.usage_quantity AS DECIMAL(38,12)) * CAST(p.pricing.effective_list."default" AS DECIMAL(38,12))) AS billed_cost,
    count(*) FILTER (WHERE p.sku_name IS NULL)                           AS unpriced_records
FROM billing_usage u
LEFT JOIN billing_list_prices p
       ON u.sku_name = p.sku_name
      AND u.cloud = p.cloud
      AND u.usage_unit = p.usage_unit
      AND u.usage_end_time >= p.price_start_time
      AND (p.price_end_time IS NULL OR u.usage_end_time < p.price_end_time)
WHERE u.usage_metadata.ai_gateway_endpoint_id IS NOT NULL
   OR u.usage_metadata.ai_gateway_endpoint_name IS NOT NULL
GROUP BY ALL;
COMMENT ON VIEW v_billing_hourly IS 'AI Gateway billing per UTC hour, gateway endpoint, destination model and SKU, priced at the effective list price in force. One row per price: an hour that straddles a price change has two.';
COMMENT ON COLUMN v_billing_hourly.usage_hour IS 'Start of the billed UTC hour.';
COMMENT ON COLUMN v_billing_hourly.workspace_id IS 'Workspace of the usage.';
COMMENT ON COLUMN v_billing_hourly.gateway_endpoint_id IS 'usage_metadata.ai_gateway_endpoint_id; matches attribution.endpoint_id.';
COMMENT ON COLUMN v_billing_hourly.gateway_endpoint_name IS 'usage_metadata.ai_gateway_endpoint_name (may be the Unity Catalog name catalog.schema.service).';
COMMENT ON COLUMN v_billing_hourly.destination_model IS 'usage_metadata.ai_gateway_destination_model; empty for endpoint-wide fees.';
COMMENT ON COLUMN v_billing_hourly.sku_name IS 'SKU billed.';
COMMENT ON COLUMN v_billing_hourly.usage_unit IS 'Unit of usage_quantity, e.g. DBU.';
COMMENT ON COLUMN v_billing_hourly.currency_code IS 'Currency of unit_price and billed_cost; NULL when no list price matched.';
COMMENT ON COLUMN v_billing_hourly.records IS 'Billing records summed (originals, retractions and restatements).';
COMMENT ON COLUMN v_billing_hourly.usage_quantity IS 'Net units consumed.';
COMMENT ON COLUMN v_billing_hourly.unit_price IS 'pricing.effective_list.default in force.';
COMMENT ON COLUMN v_billing_hourly.billed_cost IS 'usage_quantity × unit_price, in currency_code; NULL when no list price matched.';
COMMENT ON COLUMN v_billing_hourly.unpriced_records IS 'Records with no list price in force: obolus report refuses to reconcile while any exist.';
