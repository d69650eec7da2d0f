module portcullis.bench/goproxy

go 1.22
