-- Version 4: calibrated confidence. The stage carries each id-linked call's
-- masked outcome; the calibration table itself comes from the DDL (CREATE
-- TABLE IF NOT EXISTS, applied after the migrations).
ALTER TABLE stage_attribution ADD COLUMNS (
    copy_masked BIGINT COMMENT 'For an id-linked call, what the time-window rule answers with its ids masked (schemas.MaskedCode), else 0; counted for the run''s calibration.'
);
