package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/hearth-cdp/hearth"
	"github.com/hearth-cdp/hearth/internal/auth"
	"github.com/hearth-cdp/hearth/internal/collect"
)

// maxBody is the size limit of an admin API request body.
const maxBody = 1 << 20

// statusOf maps an error kind to its HTTP status: the one table of it.
var statusOf = map[hearth.Kind]int{
	hearth.Internal:        http.StatusInternalServerError,
	hearth.Invalid:         http.StatusBadRequest,
	hearth.NotFound:        http.StatusNotFound,
	hearth.Conflict:        http.StatusConflict,
	hearth.Unauthenticated: http.StatusUnauthorized,
	hearth.Forbidden:       http.StatusForbidden,
	hearth.RateLimited:     http.StatusTooManyRequests,
	hearth.TooLarge:        http.StatusRequestEntityTooLarge,
	hearth.Unavailable:     http.StatusServiceUnavailable,
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// fail answers with err as {"error":{"code","message"}}. Internal errors are logged here, once, with the
// request id that the response carries.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	kind := hearth.KindOf(err)
	status := statusOf[kind]
	if kind == hearth.Internal || kind == hearth.Unavailable {
		s.logger.ErrorContext(r.Context(), "request failed", "request_id", requestID(r.Context()), "route", r.Pattern, "err", err)
	}
	if d, ok := auth.RetryAfter(err); ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(d.Seconds()+0.999)))
	}
	var body errorBody
	body.Error.Code = hearth.CodeOf(err)
	body.Error.Message = hearth.MessageOf(err)
	writeJSON(w, status, body)
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// decode reads a JSON request body of at most maxBody bytes into v. Unknown fields are refused, so that a
// misspelt field is an error rather than silently ignored; so is text that the store cannot hold.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	const op = "httpapi.decode"
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return hearth.Errorf(hearth.TooLarge, op, "The request body is larger than %d bytes.", tooLarge.Limit)
	}
	if err != nil {
		return hearth.Errorf(hearth.Invalid, op, "The request body could not be read.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err = dec.Decode(v)
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			return hearth.Errorf(hearth.Invalid, op, "The request body must hold one JSON object.")
		}
		if !collect.StorableJSON(body) {
			return hearth.Errorf(hearth.Invalid, op, "The request body holds text that cannot be stored: a NUL character (\\u0000), half of a UTF-16 surrogate pair, or bytes that are not UTF-8.")
		}
		return nil
	}
	var (
		syntax    *json.SyntaxError
		typeError *json.UnmarshalTypeError
	)
	switch {
	case errors.Is(err, io.EOF):
		return hearth.Errorf(hearth.Invalid, op, "The request body is empty; a JSON object is expected.")
	case errors.As(err, &syntax):
		return hearth.Errorf(hearth.Invalid, op, "The request body is not valid JSON (at byte %d).", syntax.Offset)
	case errors.As(err, &typeError):
		return hearth.Errorf(hearth.Invalid, op, "The field %q must be %s.", typeError.Field, jsonType(typeError.Type.Kind().String()))
	}
	// json reports unknown fields and other problems as plain errors whose text is safe to show.
	return &hearth.Error{Kind: hearth.Invalid, Op: op, Msg: fmt.Sprintf("The request body is not valid: %s.", err.Error()), Err: err}
}

func jsonType(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "map", "struct", "ptr":
		return "an object"
	}
	return "a number"
}

// logAttrs is the access log's line for a request; it holds no personal data (no query string, no address).
func logAttrs(r *http.Request, status, bytes int, ms float64) []slog.Attr {
	return []slog.Attr{
		slog.String("request_id", requestID(r.Context())),
		slog.String("method", r.Method),
		slog.String("route", routeOf(r)),
		slog.Int("status", status),
		slog.Int("bytes", bytes),
		slog.Float64("duration_ms", ms),
	}
}
