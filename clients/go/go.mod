// The tokenwire gRPC client for Go.
//
// Built and tested here in GOPATH mode (GO111MODULE=off) against Debian's packaged modules under
// /usr/share/gocode, because no Go module proxy is reachable from this project's machines: see
// tools/system-packages.d/clients.txt and tests/clients/test_go_client.py. The versions below are
// those of the Debian packages it is tested with (golang-google-grpc-dev 1.33.3,
// golang-google-protobuf-dev 1.28.1, golang-google-genproto-dev git20200413); with a module proxy,
// `go mod tidy` adds genproto and go.sum.
module github.com/tokenwire/tokenwire/clients/go

go 1.19

require (
	google.golang.org/grpc v1.33.3
	google.golang.org/protobuf v1.28.1
)
