package tokenwire

import (
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// FieldViolation is one field the server refused (google.rpc.BadRequest).
type FieldViolation struct {
	Field       string
	Description string
}

// Error is a failed call: the gRPC status and the server's rich error details.
type Error struct {
	// Code is the gRPC status code; Code.String() is its name ("InvalidArgument").
	Code codes.Code
	// Message is the status message.
	Message string
	// Reason is google.rpc.ErrorInfo.reason, the server's stable machine-readable reason ("" if none).
	Reason string
	// Metadata is google.rpc.ErrorInfo.metadata.
	Metadata map[string]string
	// Violations are google.rpc.BadRequest's field violations.
	Violations []FieldViolation
	status     *status.Status
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// GRPCStatus lets status.FromError and status.Code see through an *Error.
func (e *Error) GRPCStatus() *status.Status { return e.status }

// FromError converts a gRPC error into an *Error (status.FromError + its details); nil stays nil,
// and an error that carries no gRPC status is returned as it is.
func FromError(err error) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	out := &Error{Code: st.Code(), Message: st.Message(), Metadata: map[string]string{}, status: st}
	for _, detail := range st.Details() {
		switch d := detail.(type) {
		case *errdetails.ErrorInfo:
			out.Reason = d.GetReason()
			for k, v := range d.GetMetadata() {
				out.Metadata[k] = v
			}
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				out.Violations = append(out.Violations, FieldViolation{v.GetField(), v.GetDescription()})
			}
		}
	}
	return out
}
