// Package tokenwire is a small typed wrapper over the generated tokenwire gRPC client
// (gen/tokenwire/v1): API key metadata on every call, streaming generation cancelled through its
// context, errors as *Error with the google.rpc.ErrorInfo reason and BadRequest violations, and
// the grpc.health.v1 check.
package tokenwire

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	pb "github.com/tokenwire/tokenwire/clients/go/gen/tokenwire/v1"
)

// Client wraps one connection. The generated stubs are exported for calls the wrapper lacks.
type Client struct {
	conn       *grpc.ClientConn
	Generation pb.GenerationServiceClient
	Engines    pb.EngineServiceClient
	Health     healthpb.HealthClient
}

type options struct {
	apiKey string
	dial   []grpc.DialOption
}

// Option configures Dial.
type Option func(*options)

// WithAPIKey sends `authorization: Bearer <key>` on every call.
func WithAPIKey(key string) Option { return func(o *options) { o.apiKey = key } }

// WithDialOptions adds gRPC dial options (TLS credentials, interceptors, ...). Without transport
// credentials among them the connection is plaintext.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dial = append(o.dial, opts...) }
}

// Dial connects to a tokenwire server at target ("host:port").
func Dial(target string, opts ...Option) (*Client, error) {
	o := options{}
	for _, opt := range opts {
		opt(&o)
	}
	dial := []grpc.DialOption{grpc.WithInsecure()}
	if o.apiKey != "" {
		key := o.apiKey
		withKey := func(ctx context.Context) context.Context {
			return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
		}
		dial = append(dial,
			grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply interface{},
				cc *grpc.ClientConn, invoker grpc.UnaryInvoker, callOpts ...grpc.CallOption) error {
				return invoker(withKey(ctx), method, req, reply, cc, callOpts...)
			}),
			grpc.WithStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn,
				method string, streamer grpc.Streamer, callOpts ...grpc.CallOption) (grpc.ClientStream, error) {
				return streamer(withKey(ctx), desc, cc, method, callOpts...)
			}))
	}
	conn, err := grpc.Dial(target, append(dial, o.dial...)...)
	if err != nil {
		return nil, err
	}
	return &Client{conn: conn, Generation: pb.NewGenerationServiceClient(conn),
		Engines: pb.NewEngineServiceClient(conn), Health: healthpb.NewHealthClient(conn)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Stream is a running generation. Cancelling the context given to Generate cancels it, and the
// server stops the engine within one decode step.
type Stream struct {
	stream pb.GenerationService_GenerateClient
}

// Recv returns the next message (the text added since the previous one; the last carries the
// finish reason), io.EOF after the last, or an *Error.
func (s *Stream) Recv() (*pb.GenerateResponse, error) {
	msg, err := s.stream.Recv()
	if errors.Is(err, io.EOF) {
		return nil, io.EOF
	}
	return msg, FromError(err)
}

// Generate starts a streamed generation.
func (c *Client) Generate(ctx context.Context, req *pb.GenerateRequest) (*Stream, error) {
	stream, err := c.Generation.Generate(ctx, req)
	if err != nil {
		return nil, FromError(err)
	}
	return &Stream{stream: stream}, nil
}

// ListEngines returns every engine the server knows, the default first.
func (c *Client) ListEngines(ctx context.Context) ([]*pb.Engine, error) {
	resp, err := c.Engines.ListEngines(ctx, &pb.ListEnginesRequest{})
	if err != nil {
		return nil, FromError(err)
	}
	return resp.GetEngines(), nil
}

// GetEngine returns one engine, with its scheduler's state.
func (c *Client) GetEngine(ctx context.Context, engineID string) (*pb.Engine, error) {
	resp, err := c.Engines.GetEngine(ctx, &pb.GetEngineRequest{EngineId: engineID})
	if err != nil {
		return nil, FromError(err)
	}
	return resp.GetEngine(), nil
}

// CheckHealth asks grpc.health.v1 about a service ("" is the whole server): "SERVING", ...
func (c *Client) CheckHealth(ctx context.Context, service string) (string, error) {
	resp, err := c.Health.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return "", FromError(err)
	}
	return resp.GetStatus().String(), nil
}
