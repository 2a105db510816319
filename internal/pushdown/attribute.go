package pushdown

import (
	"fmt"
	"strings"

	"github.com/obolus/obolus/enrich"
	"github.com/obolus/obolus/schemas"
)

// The engine's constants, as SQL literals (exact doubles in both dialects).
const (
	windowBaseConfidence = "9.5e-1" // enrich: 0.95
	skewEdgeFactor       = "7.5e-1" // enrich: 0.75
)

// attribute writes the CTEs that compute attribution rows and returns them
// with the final SELECT, whose columns are attribution's in DDL order.
func (c *Config) attribute(p *params, w Windows, run enrich.Run) (ctes, final string) {
	ctes = c.attributeCTEs(p, w, false)
	col := map[string]string{}
	for _, n := range []string{"end_user", "team", "cost_center", "agent_endpoint", "trace_id", "agent_request_id", "session", "match_method", "match_confidence", "reason"} {
		col[n] = "x." + n
	}
	join := ""
	if c.Calibrated {
		ctes += "-- Calibrated confidence per bucket of the window's time-window rows.\ncalibrated_map AS (\n" +
			schemas.CalibrationMapSQL("priced", c.Target.Table("calibration"), p.bind("cal_run", run.ID)) + "\n),\n"
		col["match_confidence"] = "coalesce(m.conf, x.match_confidence)"
		join = "\n" + schemas.CalibratedJoin("x", "calibrated_map", "m")
		if c.Match.MinConfidence > 0 {
			// A pick below the minimum is left with its service principal,
			// as enrich.Engine.Fallback leaves it: the requester's team.
			gated := "m.conf < " + p.bind("min_confidence", c.Match.MinConfidence)
			team, cc := "'"+schemas.UnassignedTeam+"'", "''"
			if c.Org != nil {
				team, cc = "coalesce(ro.team, '"+schemas.UnassignedTeam+"')", "coalesce(ro.cost_center, '')"
				join += "\nLEFT JOIN " + c.Target.Table("org_directory") + " ro\n  ON ro.digest = " + p.bind("org_digest", OrgDigest(c.Org)) +
					" AND ro.user_key = lower(trim(x.requester))"
			}
			for n, v := range map[string]string{"end_user": "x.requester", "team": team, "cost_center": cc, "agent_endpoint": "''", "trace_id": "''",
				"agent_request_id": "''", "session": "''", "match_method": "'" + schemas.MethodUnattributed + "'", "match_confidence": "0e0",
				"reason": "'" + enrich.ReasonLowConfidence + "'"} {
				col[n] = "CASE WHEN " + gated + " THEN " + v + " ELSE " + col[n] + " END"
			}
		}
	}
	final = `SELECT
  x.invocation_id, x.request_id, x.event_time, CAST(x.event_time AS DATE) AS event_date,
  x.account_id, x.workspace_id, x.endpoint_id, x.endpoint_name, x.destination_model, x.requester,
  CAST(x.status_code AS INT) AS status_code, x.usage_source,
  ` + col["end_user"] + ` AS end_user, ` + col["team"] + ` AS team, ` + col["cost_center"] + ` AS cost_center,
  ` + col["agent_endpoint"] + ` AS agent_endpoint, ` + col["trace_id"] + ` AS trace_id, ` + col["agent_request_id"] + ` AS agent_request_id,
  ` + col["session"] + ` AS session, ` + col["match_method"] + ` AS match_method, ` + col["match_confidence"] + ` AS match_confidence,
  CAST(x.candidates AS INT) AS candidates, x.weight, ` + col["reason"] + ` AS reason,
  x.input_tokens, x.output_tokens, x.total_tokens, x.cache_read_input_tokens,
  x.cache_creation_input_tokens, x.output_reasoning_tokens,
  x.cost_usd, x.price_list_version,
  ` + p.bind("version", run.Version) + ` AS version, ` + p.bind("run_id", run.ID) + ` AS run_id, ` +
		p.bind("processed_at", run.ProcessedAt) + ` AS processed_at
FROM priced x` + join
	return ctes, final
}

// attributeCTEs writes the CTEs of attribute, with masked_outcomes when
// masked (for CalibrationStats).
func (c *Config) attributeCTEs(p *params, w Windows, masked bool) string {
	var b strings.Builder
	bindDuration(p, "skew", c.Match.Skew)
	bindDuration(p, "wide", c.Match.Skew+c.Match.CrowdMargin)
	c.usageRows(&b, p, w)
	events(&b)
	c.agentRows(&b, p, w)
	agentRequests(&b)
	c.matched(&b)
	c.window(&b)
	if masked {
		c.masked(&b)
	}
	c.resolved(&b, p)
	c.priced(&b, p)
	return b.String()
}

// matched writes the id lookups: the first user tag, the first trace tag
// that names a known trace, else the first request tag that names a known
// request (enrich.Matcher.Match, in its order).
func (c *Config) matched(b *strings.Builder) {
	var userCols, traceCols, requestCols []string
	for _, tk := range c.tagKeys() {
		cols := tagColumns(tk.prefix, len(tk.keys))
		switch tk.prefix {
		case "user":
			userCols = cols
		case "trace":
			traceCols = cols
		case "request":
			requestCols = cols
		}
	}
	first := func(exprs []string) string {
		switch len(exprs) {
		case 0:
			return "CAST(NULL AS STRING)"
		case 1:
			return exprs[0]
		}
		return "coalesce(" + strings.Join(exprs, ", ") + ")"
	}
	var seen []string
	for _, tc := range append(append([]string(nil), traceCols...), requestCols...) {
		seen = append(seen, "e."+tc+" IS NOT NULL")
	}
	idSeen := "FALSE"
	if len(seen) > 0 {
		idSeen = "(" + strings.Join(seen, " OR ") + ")"
	}
	var userTags []string
	for _, uc := range userCols {
		userTags = append(userTags, "e."+uc)
	}
	// The tags' ids, one row per event and key: k is the key's place in its
	// list, and the first key that names a known request wins.
	unpivot := func(cols []string) string {
		var parts []string
		for k, c := range cols {
			parts = append(parts, fmt.Sprintf("  SELECT invocation_id, %d AS k, %s AS id FROM events WHERE %s IS NOT NULL", k, c, c))
		}
		return strings.Join(parts, "\n  UNION ALL\n")
	}
	traceLink, requestLink := "CAST(NULL AS STRING)", "CAST(NULL AS STRING)"
	var joins []string
	if len(traceCols) > 0 {
		b.WriteString("-- Trace ids in the tags, one row per event and key (k: the place of the key\n-- in match.trace_tag_keys).\ntag_trace_ids AS (\n" + unpivot(traceCols) + "\n),\n")
		b.WriteString(traceKeyCTE("tag_trace_keys", "tag_trace_ids", "id"))
		b.WriteString(`trace_hits AS (
  SELECT t.invocation_id, min_by(i.req_key, t.k) AS req_key
  FROM tag_trace_keys t JOIN trace_index i ON i.trace_key = t.trace_key
  GROUP BY t.invocation_id
),
`)
		traceLink = "th.req_key"
		joins = append(joins, "  LEFT JOIN trace_hits th ON th.invocation_id = e.invocation_id")
	}
	if len(requestCols) > 0 {
		b.WriteString("-- Request ids in the tags, likewise.\ntag_request_ids AS (\n" + unpivot(requestCols) + "\n),\n")
		b.WriteString(`request_hits AS (
  SELECT t.invocation_id, min_by(i.req_key, t.k) AS req_key
  FROM tag_request_ids t JOIN request_index i ON i.request_key = t.id
  GROUP BY t.invocation_id
),
`)
		requestLink = "rh.req_key"
		joins = append(joins, "  LEFT JOIN request_hits rh ON rh.invocation_id = e.invocation_id")
	}
	b.WriteString(`-- Id matches, in the engine's order: a user named in the tags; else the first
-- trace tag naming a known trace; else the first request tag naming a known
-- request. id_seen: the tags carry an id at all.
matched AS (
  SELECT e.*,
    ` + first(userTags) + ` AS tag_user,
    ` + traceLink + ` AS trace_link,
    ` + requestLink + ` AS request_link,
    ` + idSeen + ` AS id_seen
  FROM events e
` + strings.Join(joins, "\n") + `
),
`)
	idNotFound := "      WHEN m.id_seen THEN '" + enrich.ReasonIDNotFound + "'\n"
	if c.Match.UntrustedIDFallback {
		idNotFound = ""
	}
	fallback := "'window'"
	if !c.Match.TimeWindow {
		fallback = "'" + enrich.ReasonNoRule + "'"
	}
	b.WriteString(`-- What each event is decided by: a tag user, an id link, an id that names
-- nothing known yet (left unattributed: the request is most likely late), or
-- the time window.
decided AS (
  SELECT m.*,
    CASE
      WHEN m.tag_user IS NOT NULL THEN '` + schemas.MethodTagUser + `'
      WHEN m.trace_link IS NOT NULL THEN '` + schemas.MethodTraceID + `'
      WHEN m.request_link IS NOT NULL THEN '` + schemas.MethodRequestID + `'
` + idNotFound + `      ELSE ` + fallback + `
    END AS decision,
    coalesce(m.trace_link, m.request_link) AS link
  FROM matched m
),
`)
}

// window writes the time-window candidates: agent requests of the event's
// service principal whose interval widened by skew + crowd_margin contains
// the event (running: widened by skew alone). Each interval is listed once
// per minute bucket it touches and each event probes its own minute, so the
// join is on equality and its size is the intervals' own length; the rare
// interval over 999 minutes is joined directly. (Probing every bucket back to
// the longest interval instead made each event probe as many buckets as the
// longest request has minutes: one long request slowed every event.)
func (c *Config) window(b *strings.Builder) {
	b.WriteString(`short_spans AS (
  SELECT s.*, date_trunc('MINUTE', s.lo_time) AS lo_bucket
  FROM request_spans s
  WHERE s.hi_time <= s.lo_time + INTERVAL '999' MINUTE
),
-- Minute offsets 0..999 (hundreds, tens and units), up to the widest
-- interval's length.
bucket_offsets AS (
  SELECT h.k * 100 + t.k * 10 + u.k AS k
  FROM (VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)) AS h(k)
  CROSS JOIN (VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)) AS t(k)
  CROSS JOIN (VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)) AS u(k)
  WHERE (h.k * 100 + t.k * 10 + u.k) * INTERVAL '1' MINUTE
        <= (SELECT max(s.hi_time - s.lo_time) FROM short_spans s) + INTERVAL '1' MINUTE
),
-- Each interval once per minute bucket it touches, from the minute it starts
-- in to the one it ends in.
span_buckets AS (
  SELECT s.service_principal, s.req_key, s.start_time, s.end_time, s.lo_time, s.hi_time,
    s.lo_bucket + o.k * INTERVAL '1' MINUTE AS bucket
  FROM short_spans s
  JOIN bucket_offsets o ON s.lo_bucket + o.k * INTERVAL '1' MINUTE <= s.hi_time
),
window_events AS (
  SELECT d.invocation_id, d.requester, d.event_time FROM decided d WHERE d.decision = 'window'
),
`)
	windowChain(b, "window")
	if c.Match.Ambiguity == enrich.PolicySplit {
		b.WriteString(`-- Split shares: one per end user among several candidates (a user's requests
-- fold into one share, carried by their first), holding share_num of the n
-- candidates; share_pos numbers the shares in canonical order.
split_users AS (
  SELECT k.invocation_id, k.n, coalesce(r.end_user, '') AS end_user, count(*) AS share_num,
    min(k.pos) AS first_pos, min_by(k.req_key, k.pos) AS chosen
  FROM window_candidates k
  LEFT JOIN agent_requests r ON r.req_key = k.req_key
  WHERE k.n > 1
  GROUP BY k.invocation_id, k.n, coalesce(r.end_user, '')
),
split_shares AS (
  SELECT invocation_id, n, share_num, chosen,
    row_number() OVER (PARTITION BY invocation_id ORDER BY first_pos) - 1 AS share_pos,
    count(*) OVER (PARTITION BY invocation_id) AS users
  FROM split_users
),
`)
	}

}

// windowChain writes <prefix>_pairs, <prefix>_counts and <prefix>_candidates
// for the events of <prefix>_events.
func windowChain(b *strings.Builder, prefix string) {
	b.WriteString(strings.ReplaceAll(`window_pairs AS (
  SELECT w.invocation_id, w.event_time, s.req_key, s.start_time, s.end_time,
    s.start_time <= w.event_time + `+skewInterval+`
      AND s.end_time + `+skewInterval+` >= w.event_time AS running
  FROM window_events w
  JOIN span_buckets s
    ON s.service_principal = w.requester
   AND s.bucket = date_trunc('MINUTE', w.event_time)
  WHERE s.lo_time <= w.event_time AND s.hi_time >= w.event_time
  UNION ALL
  SELECT w.invocation_id, w.event_time, s.req_key, s.start_time, s.end_time,
    s.start_time <= w.event_time + `+skewInterval+`
      AND s.end_time + `+skewInterval+` >= w.event_time AS running
  FROM window_events w
  JOIN request_spans s ON s.service_principal = w.requester
  WHERE s.hi_time > s.lo_time + INTERVAL '999' MINUTE
    AND s.lo_time <= w.event_time AND s.hi_time >= w.event_time
),
-- n: requests running at the event (the candidates); n_wide: also those
-- within crowd_margin, which weaken a lone candidate.
window_counts AS (
  SELECT invocation_id, count(*) FILTER (WHERE running) AS n, count(*) AS n_wide
  FROM window_pairs
  GROUP BY invocation_id
),
-- The candidates in canonical order (start, key): pos numbers them for split
-- rows; nearness ranks them by distance of their start to the event.
window_candidates AS (
  SELECT p.invocation_id, p.req_key, p.start_time, p.end_time, wc.n, wc.n_wide,
    row_number() OVER (PARTITION BY p.invocation_id ORDER BY p.start_time, p.req_key) - 1 AS pos,
    row_number() OVER (
      PARTITION BY p.invocation_id
      ORDER BY CASE WHEN p.event_time >= p.start_time THEN p.event_time - p.start_time ELSE p.start_time - p.event_time END,
               p.start_time, p.req_key) AS nearness
  FROM window_pairs p
  JOIN window_counts wc ON wc.invocation_id = p.invocation_id
  WHERE p.running
),
`, "window_", prefix+"_"))
}

// masked writes masked_outcomes: for each id-linked event (one the engine
// answers by trace or request id, whose request names its end user), what
// the time-window rule answers with the ids masked, as schemas.MaskedCode
// without its correct digit (code) and whether the pick was right (correct),
// as enrich.Engine.Masked computes it.
func (c *Config) masked(b *strings.Builder) {
	b.WriteString(`-- Id-linked events, for calibration: their ids masked, the time window
-- picks a request, right or wrong.
masked_events AS (
  SELECT d.invocation_id, d.requester, d.event_time, r.end_user AS linked_user
  FROM decided d JOIN agent_requests r ON r.req_key = d.link
  WHERE d.decision IN ('` + schemas.MethodTraceID + `', '` + schemas.MethodRequestID + `') AND r.end_user <> ''
),
`)
	windowChain(b, "masked")
	pick := "k.n = 1"
	if c.Match.Ambiguity == enrich.PolicyNearest {
		pick = "(k.n = 1 OR k.nearness = 1)"
	}
	b.WriteString(`masked_outcomes AS (
  SELECT e.invocation_id, e.requester,
    CASE WHEN k.n = 1
      THEN k.n_wide * 1000 + CASE WHEN e.event_time < k.start_time OR e.event_time > k.end_time THEN 100 ELSE 0 END + ` + fmt.Sprint(schemas.MaskedTimeWindow*10) + `
      ELSE k.n * 1000 + ` + fmt.Sprint(schemas.MaskedNearest*10) + ` END AS code,
    CASE WHEN r.end_user = e.linked_user THEN 1 ELSE 0 END AS correct
  FROM masked_events e
  JOIN masked_candidates k ON k.invocation_id = e.invocation_id AND ` + pick + `
  JOIN agent_requests r ON r.req_key = k.req_key
  WHERE r.end_user <> ''
),
`)
}

// resolved writes one row per output row: the method, the chosen request,
// confidence, candidates and weight, before the end user is settled.
func (c *Config) resolved(b *strings.Builder, p *params) {
	var several string
	switch c.Match.Ambiguity {
	case enrich.PolicySplit:
		limit := p.bind("max_split_users", int64(c.Match.SplitLimit()))
		several = `  -- Several running, policy split: one row per end user, weight share_num/n;
  -- ambiguous when more than max_split_users end users share the event.
  SELECT d.invocation_id, '` + schemas.MethodTimeWindowSplit + `' AS method, '' AS reason, ` + windowBaseConfidence + ` / CAST(k.n AS DOUBLE) AS confidence,
    k.n AS candidates, CAST(k.share_num AS DOUBLE) / CAST(k.n AS DOUBLE) AS weight, k.chosen, k.share_pos AS pos, k.share_num, k.n AS parts
  FROM decided d JOIN split_shares k ON k.invocation_id = d.invocation_id AND k.users <= ` + limit + `
  UNION ALL
  SELECT d.invocation_id, '` + schemas.MethodUnattributed + `', '` + enrich.ReasonAmbiguous + `', 0e0, k.n, 1e0, CAST(NULL AS STRING), 0, 1, 1
  FROM decided d JOIN split_shares k ON k.invocation_id = d.invocation_id AND k.users > ` + limit + ` AND k.share_pos = 0`
	case enrich.PolicyNearest:
		several = `  -- Several running, policy nearest: the one that started closest to the event.
  SELECT d.invocation_id, '` + schemas.MethodTimeWindowNearest + `', '', ` + windowBaseConfidence + ` / CAST(k.n AS DOUBLE),
    k.n, 1e0, k.req_key, 0, 1, 1
  FROM decided d JOIN window_candidates k ON k.invocation_id = d.invocation_id AND k.n > 1 AND k.nearness = 1`
	default:
		several = `  -- Several running, policy unattributed: ambiguous.
  SELECT d.invocation_id, '` + schemas.MethodUnattributed + `', '` + enrich.ReasonAmbiguous + `', 0e0, k.n, 1e0, CAST(NULL AS STRING), 0, 1, 1
  FROM decided d JOIN window_candidates k ON k.invocation_id = d.invocation_id AND k.n > 1 AND k.pos = 0`
	}
	b.WriteString(`-- The outcome of every event: method, reason, confidence, candidates, weight
-- and the chosen request (split rows: pos numbers them, each holds share_num
-- of parts candidates).
outcomes AS (
  -- Matched by a tag user or an id: the linked request, when there is one.
  SELECT d.invocation_id, d.decision AS method, '' AS reason, 1e0 AS confidence,
    1 AS candidates, 1e0 AS weight, d.link AS chosen, 0 AS pos, 1 AS share_num, 1 AS parts
  FROM decided d
  WHERE d.decision IN ('` + schemas.MethodTagUser + `', '` + schemas.MethodTraceID + `', '` + schemas.MethodRequestID + `')
  UNION ALL
  -- Left unattributed before the time window: an unknown id, or no rule.
  SELECT d.invocation_id, '` + schemas.MethodUnattributed + `', d.decision, 0e0, 0, 1e0, CAST(NULL AS STRING), 0, 1, 1
  FROM decided d
  WHERE d.decision IN ('` + enrich.ReasonIDNotFound + `', '` + enrich.ReasonNoRule + `')
  UNION ALL
  -- Time window, nothing running.
  SELECT d.invocation_id, '` + schemas.MethodUnattributed + `', '` + enrich.ReasonNoCandidate + `', 0e0, 0, 1e0, CAST(NULL AS STRING), 0, 1, 1
  FROM decided d
  WHERE d.decision = 'window'
    AND NOT EXISTS (SELECT 1 FROM window_candidates k WHERE k.invocation_id = d.invocation_id)
  UNION ALL
  -- Time window, one running: 0.95 / (requests within crowd_margin), times
  -- 0.75 when the event is only inside the skew allowance.
  SELECT d.invocation_id, '` + schemas.MethodTimeWindow + `', '',
    CASE WHEN d.event_time < k.start_time OR d.event_time > k.end_time
      THEN ` + windowBaseConfidence + ` / CAST(k.n_wide AS DOUBLE) * ` + skewEdgeFactor + `
      ELSE ` + windowBaseConfidence + ` / CAST(k.n_wide AS DOUBLE) END,
    1, 1e0, k.req_key, 0, 1, 1
  FROM decided d JOIN window_candidates k ON k.invocation_id = d.invocation_id AND k.n = 1
  UNION ALL
` + several + `
),
-- Settle the end user: the tag user or the chosen request's; a match whose
-- request names nobody is unattributed (request_has_no_user), except split
-- shares, which the engine keeps with the requester as owner. Unattributed rows stay with the requester
-- and carry no request.
settled AS (
  SELECT e.*, o.method AS raw_method, o.reason AS raw_reason, o.confidence AS raw_confidence,
    o.candidates, o.weight, o.pos, o.share_num, o.parts,
    coalesce(e.tag_user, r.end_user, '') AS raw_user,
    coalesce(r.agent_endpoint, '') AS r_agent_endpoint, coalesce(r.trace_id, '') AS r_trace_id,
    coalesce(r.agent_request_id, '') AS r_agent_request_id, coalesce(r.session, '') AS r_session
  FROM outcomes o
  JOIN decided e ON e.invocation_id = o.invocation_id
  LEFT JOIN agent_requests r ON r.req_key = o.chosen
),
resolved AS (
  SELECT s.*,
    s.raw_method NOT IN ('` + schemas.MethodUnattributed + `', '` + schemas.MethodTimeWindowSplit + `') AND s.raw_user = '' AS no_user
  FROM settled s
),
final_rows AS (
  SELECT r.*,
    CASE WHEN r.no_user THEN '` + schemas.MethodUnattributed + `' ELSE r.raw_method END AS match_method,
    CASE WHEN r.no_user OR r.raw_user = '' AND r.raw_method = '` + schemas.MethodTimeWindowSplit + `' THEN '` + enrich.ReasonNoUser + `' ELSE r.raw_reason END AS reason,
    CASE WHEN r.no_user THEN 0e0 ELSE r.raw_confidence END AS match_confidence
  FROM resolved r
),
-- Tokens: split shares get the invocation's counts apportioned exactly like
-- enrich.ApportionCounts: floor(count * share_num / parts) each, and what the
-- floors leave over one each to the largest remainders, ties to the earlier share.
floored AS (
  SELECT
    f.invocation_id, f.request_id, f.event_time, f.account_id, f.workspace_id, f.endpoint_id, f.endpoint_name,
    f.destination_name, f.destination_model, f.requester, f.status_code, f.usage_source,
    CASE WHEN f.match_method = '` + schemas.MethodUnattributed + `' OR f.raw_user = '' THEN f.requester ELSE f.raw_user END AS end_user,
    CASE WHEN f.match_method = '` + schemas.MethodUnattributed + `' THEN '' ELSE f.r_agent_endpoint END AS agent_endpoint,
    CASE WHEN f.match_method = '` + schemas.MethodUnattributed + `' THEN '' ELSE f.r_trace_id END AS trace_id,
    CASE WHEN f.match_method = '` + schemas.MethodUnattributed + `' THEN '' ELSE f.r_agent_request_id END AS agent_request_id,
    CASE WHEN f.match_method = '` + schemas.MethodUnattributed + `' THEN '' ELSE f.r_session END AS session,
    f.match_method, f.match_confidence, f.candidates, f.weight, f.reason, f.pos,
`)
	tokenCols := []string{"input_tokens", "output_tokens", "total_tokens", "cache_read_input_tokens", "cache_creation_input_tokens", "output_reasoning_tokens"}
	for i, tc := range tokenCols {
		sep := ","
		if i == len(tokenCols)-1 {
			sep = ""
		}
		fmt.Fprintf(b, "    f.%[1]s AS %[1]s_whole,\n"+
			"    CAST((f.%[1]s * f.share_num - (f.%[1]s * f.share_num) %% f.parts) / f.parts AS BIGINT) AS %[1]s_floor,\n"+
			"    (f.%[1]s * f.share_num) %% f.parts AS %[1]s_rem%[2]s\n", tc, sep)
	}
	b.WriteString(`  FROM final_rows f
),
shaped AS (
  SELECT
    f.invocation_id, f.request_id, f.event_time, f.account_id, f.workspace_id, f.endpoint_id, f.endpoint_name,
    f.destination_name, f.destination_model, f.requester, f.status_code, f.usage_source,
    f.end_user, f.agent_endpoint, f.trace_id, f.agent_request_id, f.session,
    f.match_method, f.match_confidence, f.candidates, f.weight, f.reason,
`)
	for i, tc := range tokenCols {
		sep := ","
		if i == len(tokenCols)-1 {
			sep = ""
		}
		fmt.Fprintf(b, "    f.%[1]s_floor + CASE WHEN row_number() OVER (PARTITION BY f.invocation_id ORDER BY f.%[1]s_rem DESC, f.pos)\n"+
			"      <= f.%[1]s_whole - sum(f.%[1]s_floor) OVER (PARTITION BY f.invocation_id) THEN 1 ELSE 0 END AS %[1]s%[2]s\n", tc, sep)
	}
	b.WriteString("  FROM floored f\n),\n")
}

// priced writes the team, cost center and cost of each row.
func (c *Config) priced(b *strings.Builder, p *params) {
	input := "s.input_tokens"
	if !c.Prices.InputExcludesCache {
		input = "greatest(s.input_tokens - s.cache_read_input_tokens - s.cache_creation_input_tokens, 0)"
	}
	price := func(a string) string {
		return "(CAST(" + input + " AS DOUBLE) * " + a + ".input_per_m + CAST(s.output_tokens AS DOUBLE) * " + a + ".output_per_m" +
			"\n       + CAST(s.cache_read_input_tokens AS DOUBLE) * " + a + ".cache_read_per_m + CAST(s.cache_creation_input_tokens AS DOUBLE) * " + a + ".cache_create_per_m) / 1e6"
	}
	digest := p.bind("price_digest", PriceDigest(c.Prices))
	prices := c.Target.Table("price_list")
	join := func(a, expr string) string {
		return "  LEFT JOIN " + prices + " " + a + "\n    ON " + a + ".digest = " + digest + " AND " + a + ".lookup_key = lower(trim(" + expr + "))" +
			"\n   AND (" + a + ".valid_from IS NULL OR s.event_time >= " + a + ".valid_from) AND (" + a + ".valid_to IS NULL OR s.event_time < " + a + ".valid_to)\n"
	}
	team, cc, orgJoin := "'"+schemas.UnassignedTeam+"'", "''", ""
	if c.Org != nil {
		team, cc = "coalesce(o.team, '"+schemas.UnassignedTeam+"')", "coalesce(o.cost_center, '')"
		orgJoin = "  LEFT JOIN " + c.Target.Table("org_directory") + " o\n    ON o.digest = " + p.bind("org_digest", OrgDigest(c.Org)) + " AND o.user_key = lower(trim(s.end_user))\n"
	}
	b.WriteString(`-- Team and cost center from the org directory; cost from the price list
-- version in force at event_time, looked up by destination_model, then by
-- destination_name (enrich.PriceList.Cost).
priced AS (
  SELECT s.*,
    ` + team + ` AS team,
    ` + cc + ` AS cost_center,
    CASE
      WHEN pm.version IS NOT NULL THEN ` + price("pm") + `
      WHEN pn.version IS NOT NULL THEN ` + price("pn") + `
      ELSE 0e0
    END AS cost_usd,
    coalesce(pm.version, pn.version, '` + enrich.UnpricedVersion + `') AS price_list_version
  FROM shaped s
` + join("pm", "s.destination_model") + join("pn", "s.destination_name") + orgJoin + `),
`)
}
