-- Version 3: a batch run stages its rows in chunks as it produces them, each
-- with the usage row (copy) it came from; the MERGE keeps one copy per
-- invocation.
ALTER TABLE stage_attribution ADD COLUMNS (
    copy_seq BIGINT COMMENT 'Which usage row (copy) of the invocation the row came from: its read order in the run. The write keeps the copy with the earliest event time, then the most tokens, then the lowest copy_seq.',
    copy_event_ns BIGINT COMMENT 'The copy''s event_time, unix nanoseconds.',
    copy_total_tokens BIGINT COMMENT 'The copy''s total_tokens.',
    copy_input_tokens BIGINT COMMENT 'The copy''s input_tokens.'
);
