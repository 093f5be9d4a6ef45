package ui

import (
	stdjson "encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/labstack/echo/v4"
)

// maxBodyBytes bounds a request body; every body of the API is small.
const maxBodyBytes = 1 << 20

// decodeBody decodes the request's JSON body into v, refusing unknown
// fields, trailing data and bodies over maxBodyBytes, and answers 400 (413
// for a body too large) naming the field at fault. An empty body is an
// error unless emptyOK, when v is left as it is. Numbers in fields of type
// any decode as json.Number (see dag.NormalizeNumbers).
func decodeBody(c echo.Context, v any, emptyOK bool) error {
	if err := decodeJSON(c, v, emptyOK); err != nil {
		return bodyError(err)
	}
	return nil
}

// errTrailingData reports a body with more after its JSON value.
var errTrailingData = errors.New("unexpected data after the JSON value")

// bodyOptions decode request bodies: unknown members are refused, names
// match their fields whatever their case (as encoding/json matched them),
// and numbers in fields of type any are kept as written.
var bodyOptions = json.JoinOptions(
	json.RejectUnknownMembers(true),
	json.MatchCaseInsensitiveNames(true),
	json.WithUnmarshalers(json.UnmarshalFromFunc(numberAsWritten)),
)

// numberAsWritten decodes a JSON number into an any as a json.Number;
// anything else is left to the default.
func numberAsWritten(dec *jsontext.Decoder, v *any) error {
	if dec.PeekKind() != '0' {
		return json.SkipFunc
	}
	tok, err := dec.ReadToken()
	if err != nil {
		return err
	}
	*v = stdjson.Number(tok.String())
	return nil
}

// decodeJSON is decodeBody returning the decoder's own errors. The whole
// value is read before it is decoded, so malformed JSON is reported as
// such rather than as a problem with the part read so far.
func decodeJSON(c echo.Context, v any, emptyOK bool) error {
	r := c.Request()
	dec := jsontext.NewDecoder(http.MaxBytesReader(c.Response(), r.Body, maxBodyBytes))
	val, err := dec.ReadValue()
	if err != nil {
		if errors.Is(err, io.EOF) && emptyOK {
			return nil
		}
		return err
	}
	if err := json.Unmarshal(val, v, bodyOptions); err != nil {
		return err
	}
	if _, err := dec.ReadToken(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return errTrailingData
	}
	return nil
}

// bodyError turns a JSON decoding error into a 400 answer naming the field
// at fault where there is one.
func bodyError(err error) error {
	var (
		mbe *http.MaxBytesError
		syn *jsontext.SyntacticError
		sem *json.SemanticError
	)
	switch {
	case errors.As(err, &mbe):
		return &apiError{http.StatusRequestEntityTooLarge, fmt.Sprintf("body: larger than %d bytes", mbe.Limit)}
	case errors.Is(err, io.EOF):
		return badRequest("body: empty; want a JSON object")
	case errors.Is(err, errTrailingData):
		return badRequest("body: %v", err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("body: JSON ends too early")
	case errors.Is(err, jsontext.ErrDuplicateName) && errors.As(err, &syn):
		return badRequest("%s: given twice", fieldName(syn.JSONPointer))
	case errors.As(err, &syn):
		return badRequest("body: invalid JSON at byte %d: %v", syn.ByteOffset, syn.Err)
	case errors.As(err, &sem):
		return semanticError(sem)
	}
	return badRequest("body: %v", err)
}

// semanticError answers valid JSON that does not fit the request: a member
// the request does not have, or a value of the wrong type.
func semanticError(e *json.SemanticError) error {
	if errors.Is(e.Err, json.ErrUnknownName) {
		return badRequest("%s: unknown field %q", fieldName(e.JSONPointer.Parent()), e.JSONPointer.LastToken())
	}
	got := valueKind(e.JSONKind)
	if e.JSONKind == '0' && len(e.JSONValue) > 0 {
		got += " " + string(e.JSONValue)
	}
	switch {
	case e.JSONPointer == "":
		return badRequest("body: want a JSON object, got %s", got)
	case e.GoType == nil:
		return badRequest("%s: %v", fieldName(e.JSONPointer), e)
	}
	return badRequest("%s: want %s, got %s", fieldName(e.JSONPointer), goKind(e.GoType), got)
}

// fieldName names the member at p as a path of names, a.b for /a/b; the
// body itself is "body".
func fieldName(p jsontext.Pointer) string {
	if p == "" {
		return "body"
	}
	return strings.Join(slices.Collect(p.Tokens()), ".")
}

// valueKind names the kind of a JSON value.
func valueKind(k jsontext.Kind) string {
	switch k {
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "a JSON value"
}

// goKind names a Go type the way a JSON user would: "an integer".
func goKind(t reflect.Type) string {
	noun := kindNoun(t)
	if strings.IndexByte("aeiou", noun[0]) >= 0 {
		return "an " + noun
	}
	return "a " + noun
}

func kindNoun(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	case reflect.Slice, reflect.Array:
		return "array of " + kindNoun(t.Elem()) + "s"
	case reflect.Map, reflect.Struct:
		return "object"
	}
	return t.String()
}
