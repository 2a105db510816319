-- v_billing_hourly: the AI Gateway bill per hour, read from system.billing.usage
-- and system.billing.list_prices. Needs SELECT on system.billing; init skips
-- this view, and says so, where obolus's identity cannot read those tables.
-- The gateway fields are read under their GA names (usage_metadata.ai_gateway
-- struct) and their Beta names (flat usage_metadata.ai_gateway_*), through the
-- struct's JSON: a workspace's table may lack either, and naming a missing
-- struct field is an error.
-- requires: system.billing.usage, system.billing.list_prices
CREATE OR REPLACE VIEW v_billing_hourly
COMMENT 'AI Gateway billing per UTC hour, gateway endpoint, destination model, SKU and price, priced at the effective list price in force at each record''s end.'
AS SELECT
    date_trunc('HOUR', u.usage_start_time)                                AS usage_hour,
    u.workspace_id,
    coalesce(get_json_object(to_json(u.usage_metadata), '$.ai_gateway.endpoint_id'), get_json_object(to_json(u.usage_metadata), '$.ai_gateway_endpoint_id'), '') AS gateway_endpoint_id,
    coalesce(get_json_object(to_json(u.usage_metadata), '$.ai_gateway.endpoint_name'), get_json_object(to_json(u.usage_metadata), '$.ai_gateway_endpoint_name'), '') AS gateway_endpoint_name,
    coalesce(get_json_object(to_json(u.usage_metadata), '$.ai_gateway.destination_model'), get_json_object(to_json(u.usage_metadata), '$.ai_gateway_destination_model'), '') AS destination_model,
    u.sku_name,
    u.usage_unit,
    p.currency_code,
    count(*)                                                              AS records,
    sum(u.usage_quantity)                                                 AS usage_quantity,
    p.pricing.effective_list.`default`                                    AS unit_price,
    sum(u.usage_quantity * p.pricing.effective_list.`default`)            AS billed_cost,
    count_if(p.sku_name IS NULL)                                          AS unpriced_records
FROM system.billing.usage u
LEFT JOIN system.billing.list_prices p
       ON u.sku_name = p.sku_name
      AND u.cloud = p.cloud
      AND u.usage_unit = p.usage_unit
      AND u.usage_end_time >= p.price_start_time
      AND (p.price_end_time IS NULL OR u.usage_end_time < p.price_end_time)
WHERE coalesce(get_json_object(to_json(u.usage_metadata), '$.ai_gateway.endpoint_id'), get_json_object(to_json(u.usage_metadata), '$.ai_gateway_endpoint_id')) IS NOT NULL
   OR coalesce(get_json_object(to_json(u.usage_metadata), '$.ai_gateway.endpoint_name'), get_json_object(to_json(u.usage_metadata), '$.ai_gateway_endpoint_name')) IS NOT NULL
GROUP BY ALL;
