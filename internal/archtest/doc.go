// Package archtest has no code, only a test: it checks which packages of the
// module may import which (see importdirection_test.go; `make lint` runs it).
package archtest
