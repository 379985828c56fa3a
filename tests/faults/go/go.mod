module github.com/contenox/modeldconn/tests/faults

go 1.25.0

require golang.org/x/net v0.52.0

require golang.org/x/text v0.35.0 // indirect
