module simplechat/bench/loadgen

go 1.19
