// Live tests against a running `tokenwire serve` (started by tests/clients/test_go_client.py):
// TOKENWIRE_TARGET is its gRPC address, TOKENWIRE_API_KEY the key it requires.
package tokenwire_test

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tokenwire "github.com/tokenwire/tokenwire/clients/go"
	pb "github.com/tokenwire/tokenwire/clients/go/gen/tokenwire/v1"
)

// SmolLM2's end-of-generation tokens, banned so that a generation runs until it is cancelled.
var banEnd = map[int32]float32{0: -100, 2: -100, 4: -100}

func dial(t *testing.T, withKey bool) *tokenwire.Client {
	t.Helper()
	target, key := os.Getenv("TOKENWIRE_TARGET"), os.Getenv("TOKENWIRE_API_KEY")
	if target == "" || key == "" {
		t.Fatal("TOKENWIRE_TARGET and TOKENWIRE_API_KEY must be set")
	}
	var opts []tokenwire.Option
	if withKey {
		opts = append(opts, tokenwire.WithAPIKey(key))
	}
	client, err := tokenwire.Dial(target, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 240*time.Second)
	t.Cleanup(cancel)
	return c
}

func float(v float32) *float32 { return &v }
func int32p(v int32) *int32    { return &v }

func defaultEngine(t *testing.T, client *tokenwire.Client) string {
	engines, err := client.ListEngines(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range engines {
		if e.GetIsDefault() {
			return e.GetEngineId()
		}
	}
	t.Fatal("no default engine")
	return ""
}

func TestHealthCheckIsServing(t *testing.T) {
	got, err := dial(t, false).CheckHealth(ctx(t), "")
	if err != nil || got != "SERVING" {
		t.Fatalf("health: %q, %v", got, err)
	}
}

func TestListEngines(t *testing.T) {
	defaultEngine(t, dial(t, true))
}

func TestStreamsAChatGenerationTokenByToken(t *testing.T) {
	stream, err := dial(t, true).Generate(ctx(t), &pb.GenerateRequest{
		Input: &pb.GenerateRequest_Chat{Chat: &pb.ChatMessages{Messages: []*pb.ChatMessage{
			{Role: "system", Content: "Answer in one word."},
			{Role: "user", Content: "What is the capital of France?"},
		}}},
		Sampling:  &pb.SamplingParams{Temperature: float(0)},
		MaxTokens: int32p(24),
	})
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	messages, finish := 0, pb.FinishReason_FINISH_REASON_UNSPECIFIED
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		messages++
		text.WriteString(msg.GetText())
		if msg.GetFinishReason() != pb.FinishReason_FINISH_REASON_UNSPECIFIED {
			finish = msg.GetFinishReason()
		}
	}
	if messages < 2 || !strings.Contains(text.String(), "Paris") || finish == pb.FinishReason_FINISH_REASON_UNSPECIFIED {
		t.Fatalf("%d messages, text %q, finish %v", messages, text.String(), finish)
	}
}

func TestCancelMidwayFreesTheSequence(t *testing.T) {
	client := dial(t, true)
	engineID := defaultEngine(t, client)
	streamCtx, cancel := context.WithCancel(ctx(t))
	defer cancel()
	stream, err := client.Generate(streamCtx, &pb.GenerateRequest{
		Input:     &pb.GenerateRequest_Prompt{Prompt: "Once upon a time"},
		Sampling:  &pb.SamplingParams{Temperature: float(0), LogitBias: banEnd},
		MaxTokens: int32p(3000),
	})
	if err != nil {
		t.Fatal(err)
	}
	for received := 0; received < 3; {
		msg, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if msg.GetText() != "" {
			received++
		}
	}
	busy, err := client.GetEngine(ctx(t), engineID)
	if err != nil || busy.GetScheduler().GetActiveSequences() != 1 {
		t.Fatalf("while streaming: %v, %v", busy.GetScheduler(), err)
	}
	cancel()
	for {
		_, err := stream.Recv()
		if err != nil {
			if status.Code(err) != codes.Canceled {
				t.Fatalf("after cancel: %v", err)
			}
			break
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		engine, err := client.GetEngine(ctx(t), engineID)
		if err != nil {
			t.Fatal(err)
		}
		if engine.GetScheduler().GetActiveSequences() == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the server still runs the cancelled sequence after 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestInvalidArgumentCarriesTheFieldViolation(t *testing.T) {
	stream, err := dial(t, true).Generate(ctx(t), &pb.GenerateRequest{
		Input:    &pb.GenerateRequest_Prompt{Prompt: "hi"},
		Sampling: &pb.SamplingParams{TopP: float(2)},
	})
	if err == nil {
		_, err = stream.Recv()
	}
	var failed *tokenwire.Error
	if !errors.As(err, &failed) || failed.Code != codes.InvalidArgument {
		t.Fatalf("want INVALID_ARGUMENT, got %v", err)
	}
	for _, v := range failed.Violations {
		if v.Field == "sampling.top_p" {
			return
		}
	}
	t.Fatalf("no sampling.top_p violation in %+v", failed.Violations)
}

func TestUnauthenticatedWithoutKeySuccessWithKey(t *testing.T) {
	_, err := dial(t, false).ListEngines(ctx(t))
	var failed *tokenwire.Error
	if !errors.As(err, &failed) || failed.Code != codes.Unauthenticated || failed.Reason == "" {
		t.Fatalf("want UNAUTHENTICATED with a reason, got %#v", err)
	}
	if _, err := dial(t, true).ListEngines(ctx(t)); err != nil {
		t.Fatal(err)
	}
}
