package main

import (
	"database/sql"
	"fmt"
	"os"
	"strings"

	_ "github.com/duckdb/duckdb-go/v2"
)

func main() {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		panic(err)
	}
	b, _ := os.ReadFile(os.Args[1])
	for _, q := range strings.Split(string(b), ";;") {
		q = strings.TrimSpace(q)
		if q == "" {
			continue
		}
		rows, err := db.Query(q)
		if err != nil {
			fmt.Printf("ERR %s\n   -> %v\n", q, err)
			continue
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			rows.Scan(ptrs...)
			fmt.Printf("OK %.80s => %v\n", strings.ReplaceAll(q, "\n", " "), vals)
		}
		rows.Close()
	}
}
