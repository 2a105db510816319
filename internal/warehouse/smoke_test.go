package warehouse

import "testing"

func TestSmoke(t *testing.T) {
	s := startServer(t, Config{})
	db := openDB(t, s)
	var n int64
	var str string
	if err := db.QueryRowContext(testCtx(t), "SELECT 42::BIGINT, 'hi'").Scan(&n, &str); err != nil {
		t.Fatal(err)
	}
	t.Log(n, str)
}
