// Command tokenwire-stream streams generations through the Go client: the runnable example of
// the client, and the worker bench/clients.py times.
//
//	tokenwire-stream -target 127.0.0.1:50051 -prompt "Once upon a time" -max-tokens 32
//
// prints the text as it arrives. With -bench it reads one JSON request per stdin line
// ({"target", "prompt", "max_tokens", "logit_bias"}) and writes one JSON line of client-side
// timings per request ({"tokens", "ttft_ms", "decode_tps", "e2e_tps", "server_tps", ...}).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"strconv"
	"strings"
	"time"

	tokenwire "github.com/tokenwire/tokenwire/clients/go"
	pb "github.com/tokenwire/tokenwire/clients/go/gen/tokenwire/v1"
)

type job struct {
	Target    string             `json:"target"`
	Prompt    string             `json:"prompt"`
	MaxTokens int32              `json:"max_tokens"`
	LogitBias map[string]float32 `json:"logit_bias"`
}

type result struct {
	Tokens       int     `json:"tokens"`
	TTFTms       float64 `json:"ttft_ms"`
	DecodeTPS    float64 `json:"decode_tps"`
	E2ETPS       float64 `json:"e2e_tps"`
	ServerTPS    float64 `json:"server_tps"`
	FinishReason string  `json:"finish_reason"`
	Text         string  `json:"text"`
}

func stream(ctx context.Context, client *tokenwire.Client, j job, onText func(string)) (result, error) {
	bias := map[int32]float32{}
	for token, value := range j.LogitBias {
		id, err := strconv.Atoi(token)
		if err != nil {
			return result{}, err
		}
		bias[int32(id)] = value
	}
	temperature, maxTokens := float32(0), j.MaxTokens
	sent := time.Now()
	s, err := client.Generate(ctx, &pb.GenerateRequest{
		Input:     &pb.GenerateRequest_Prompt{Prompt: j.Prompt},
		Sampling:  &pb.SamplingParams{Temperature: &temperature, LogitBias: bias},
		MaxTokens: &maxTokens,
	})
	if err != nil {
		return result{}, err
	}
	var r result
	var first, last time.Time
	var text strings.Builder
	for {
		msg, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return result{}, err
		}
		if len(msg.GetTokenIds()) > 0 {
			last = time.Now()
			if first.IsZero() {
				first = last
			}
			r.Tokens += len(msg.GetTokenIds())
		}
		text.WriteString(msg.GetText())
		onText(msg.GetText())
		if msg.GetFinishReason() != pb.FinishReason_FINISH_REASON_UNSPECIFIED {
			r.FinishReason = msg.GetFinishReason().String()
			r.ServerTPS = msg.GetTimings().GetTokensPerSecond()
		}
	}
	r.Text = text.String()
	r.TTFTms = float64(first.Sub(sent)) / float64(time.Millisecond)
	r.DecodeTPS = float64(r.Tokens-1) / last.Sub(first).Seconds()
	r.E2ETPS = float64(r.Tokens) / last.Sub(sent).Seconds()
	return r, nil
}

func main() {
	target := flag.String("target", "127.0.0.1:50051", "the server's gRPC address")
	apiKey := flag.String("api-key", os.Getenv("TOKENWIRE_API_KEY"), "API key (default $TOKENWIRE_API_KEY)")
	prompt := flag.String("prompt", "Once upon a time", "raw prompt")
	maxTokens := flag.Int("max-tokens", 32, "tokens to generate")
	bench := flag.Bool("bench", false, "read JSON requests from stdin, write JSON timings")
	flag.Parse()

	var opts []tokenwire.Option
	if *apiKey != "" {
		opts = append(opts, tokenwire.WithAPIKey(*apiKey))
	}
	if !*bench {
		client, err := tokenwire.Dial(*target, opts...)
		if err != nil {
			log.Fatal(err)
		}
		defer client.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		_, err = stream(ctx, client, job{Prompt: *prompt, MaxTokens: int32(*maxTokens)},
			func(text string) { fmt.Print(text) })
		fmt.Println()
		if err != nil {
			log.Fatal(err)
		}
		return
	}
	var client *tokenwire.Client
	lines := bufio.NewScanner(os.Stdin)
	out := json.NewEncoder(os.Stdout)
	for lines.Scan() {
		var j job
		if err := json.Unmarshal(lines.Bytes(), &j); err != nil {
			log.Fatal(err)
		}
		if client == nil {
			var err error
			if client, err = tokenwire.Dial(j.Target, opts...); err != nil {
				log.Fatal(err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		r, err := stream(ctx, client, j, func(string) {})
		cancel()
		if err != nil {
			log.Fatal(err)
		}
		if err := out.Encode(r); err != nil {
			log.Fatal(err)
		}
	}
}
