-- obolus chargeback views for Databricks SQL: the monthly analyst views and
-- the AI Gateway bill, under the same names as in the embedded DuckDB store
-- (schemas/ddl/duckdb/22_*.sql to 27_*.sql), so queries and the dashboard
-- deploy/databricks/obolus-chargeback.lvdash.json run on either store.
--
-- Run in the catalog and schema that hold obolus's attribution table:
--   USE CATALOG main; USE SCHEMA obolus;
-- then this file (Databricks SQL warehouse or DBR 14.1+). The billing view
-- reads system.billing.usage and system.billing.list_prices directly, which
-- needs SELECT on the system.billing schema.

CREATE OR REPLACE VIEW v_billing_hourly
COMMENT 'AI Gateway billing per UTC hour, gateway endpoint, destination model, SKU and price, priced at the effective list price in force at each record''s end.'
AS SELECT
    date_trunc('HOUR', u.usage_start_time)                                AS usage_hour,
    u.workspace_id,
    coalesce(u.usage_metadata.ai_gateway_endpoint_id, '')                 AS gateway_endpoint_id,
    coalesce(u.usage_metadata.ai_gateway_endpoint_name, '')               AS gateway_endpoint_name,
    coalesce(u.usage_metadata.ai_gateway_destination_model, '')           AS destination_model,
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
WHERE u.usage_metadata.ai_gateway_endpoint_id IS NOT NULL
   OR u.usage_metadata.ai_gateway_endpoint_name IS NOT NULL
GROUP BY ALL;

CREATE OR REPLACE VIEW v_monthly_user
COMMENT 'Per UTC calendar month and end user: invocations (sum of weight), agents used, tokens, list-price cost and mean match confidence. Unattributed spend appears under the service principal (attributed = false).'
AS SELECT
    CAST(date_trunc('MONTH', event_date) AS DATE)                        AS month,
    end_user,
    team,
    cost_center,
    bool_or(match_method <> 'unattributed')                              AS attributed,
    round(sum(weight), 6)                                                AS invocations,
    count(DISTINCT agent_endpoint)                                       AS agents,
    CAST(sum(input_tokens) AS BIGINT)                                    AS input_tokens,
    CAST(sum(output_tokens) AS BIGINT)                                   AS output_tokens,
    CAST(sum(total_tokens) AS BIGINT)                                    AS total_tokens,
    sum(cost_usd)                                                        AS cost_usd,
    coalesce(sum(weight * match_confidence) / nullif(sum(weight), 0), 0) AS mean_confidence
FROM attribution
GROUP BY ALL;

CREATE OR REPLACE VIEW v_monthly_team
COMMENT 'Per UTC calendar month, team and cost center: end users, invocations, tokens, list-price cost, and the shares of cost matched by identifier or left unattributed.'
AS SELECT
    CAST(date_trunc('MONTH', event_date) AS DATE)                        AS month,
    team,
    cost_center,
    count(DISTINCT CASE WHEN match_method <> 'unattributed' THEN end_user END) AS users,
    round(sum(weight), 6)                                                AS invocations,
    CAST(sum(input_tokens) AS BIGINT)                                    AS input_tokens,
    CAST(sum(output_tokens) AS BIGINT)                                   AS output_tokens,
    CAST(sum(total_tokens) AS BIGINT)                                    AS total_tokens,
    sum(cost_usd)                                                        AS cost_usd,
    coalesce(sum(CASE WHEN match_method IN ('tag_user', 'trace_id', 'request_id') THEN cost_usd END) / nullif(sum(cost_usd), 0), 0) AS id_matched_cost_share,
    coalesce(sum(CASE WHEN match_method = 'unattributed' THEN cost_usd END) / nullif(sum(cost_usd), 0), 0) AS unattributed_cost_share
FROM attribution
GROUP BY ALL;

CREATE OR REPLACE VIEW v_monthly_agent
COMMENT 'Per UTC calendar month and agent endpoint: users, invocations, match confidence, tokens and list-price cost. Unattributed calls have an empty agent_endpoint.'
AS SELECT
    CAST(date_trunc('MONTH', event_date) AS DATE)                        AS month,
    agent_endpoint,
    count(DISTINCT end_user)                                             AS users,
    round(sum(weight), 6)                                                AS invocations,
    coalesce(sum(weight * match_confidence) / nullif(sum(weight), 0), 0) AS mean_confidence,
    CAST(sum(input_tokens) AS BIGINT)                                    AS input_tokens,
    CAST(sum(output_tokens) AS BIGINT)                                   AS output_tokens,
    CAST(sum(total_tokens) AS BIGINT)                                    AS total_tokens,
    sum(cost_usd)                                                        AS cost_usd
FROM attribution
GROUP BY ALL;

CREATE OR REPLACE VIEW v_monthly_model
COMMENT 'Per UTC calendar month, gateway endpoint and destination model: users, invocations, attributed invocations, tokens and list-price cost.'
AS SELECT
    CAST(date_trunc('MONTH', event_date) AS DATE)                        AS month,
    endpoint_name,
    destination_model,
    count(DISTINCT end_user)                                             AS users,
    round(sum(weight), 6)                                                AS invocations,
    coalesce(round(sum(CASE WHEN match_method <> 'unattributed' THEN weight END), 6), 0) AS attributed_invocations,
    CAST(sum(input_tokens) AS BIGINT)                                    AS input_tokens,
    CAST(sum(output_tokens) AS BIGINT)                                   AS output_tokens,
    CAST(sum(total_tokens) AS BIGINT)                                    AS total_tokens,
    sum(cost_usd)                                                        AS cost_usd
FROM attribution
GROUP BY ALL;

CREATE OR REPLACE VIEW v_coverage_monthly
COMMENT 'Per UTC calendar month and match method: invocations, tokens and list-price cost with their shares of the month, and the basis of the match (id, time_window, unattributed).'
AS SELECT
    month,
    match_method,
    basis,
    invocations,
    coalesce(invocations / nullif(sum(invocations) OVER (PARTITION BY month), 0), 0) AS share_of_invocations,
    total_tokens,
    cost_usd,
    coalesce(cost_usd / nullif(sum(cost_usd) OVER (PARTITION BY month), 0), 0)       AS share_of_cost,
    mean_confidence
FROM (
    SELECT
        CAST(date_trunc('MONTH', event_date) AS DATE)                    AS month,
        match_method,
        CASE WHEN match_method IN ('tag_user', 'trace_id', 'request_id') THEN 'id'
             WHEN match_method = 'unattributed' THEN 'unattributed'
             ELSE 'time_window' END                                      AS basis,
        round(sum(weight), 6)                                            AS invocations,
        CAST(sum(total_tokens) AS BIGINT)                                AS total_tokens,
        sum(cost_usd)                                                    AS cost_usd,
        coalesce(sum(weight * match_confidence) / nullif(sum(weight), 0), 0) AS mean_confidence
    FROM attribution
    GROUP BY ALL
);
