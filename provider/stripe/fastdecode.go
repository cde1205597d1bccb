package stripe

import (
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"strconv"
)

// scan is decodeOnce's fast path: it fills ev, which must be zero but
// for Data.Object = &ev.object, as json.Unmarshal(raw, ev) would, in one
// walk over raw without reflection. ok is false when it cannot vouch for
// that (invalid JSON anywhere, a key that encoding/json would match
// case-insensitively, a known key twice, a value of another type than its
// field's, ...): ev is then in any state, and decodeOnce decodes with
// encoding/json instead. When ok is true, json.Unmarshal(raw, ev) returns
// nil and gives the same ev.
//
// It validates every byte it skips as encoding/json's checkValid does,
// and decodes only the fields oneEvent and oneObject have, the nested
// structs, slices and map hookd reads (items, lines, parent, metadata)
// included. It leaves to json.Unmarshal only the unquoting of a string
// with escapes or bytes beyond printable ASCII (of just that token), and
// to (*ID).UnmarshalJSON and (*eventCreated).UnmarshalJSON their values'
// bytes, as encoding/json hands them over.
func (ev *oneEvent) scan(raw []byte) (ok bool) {
	s := scanner{b: raw}
	s.ws()
	if !s.eventObject(ev) {
		return false
	}
	s.ws()
	return s.i == len(s.b)
}

// scanMaxDepth bounds the nesting the scanner follows, well below
// encoding/json's limit (10000): deeper documents are left to it.
const scanMaxDepth = 512

// scanner walks a JSON document: b[i] is the next byte to read.
type scanner struct {
	b []byte
	i int
}

// ws skips JSON whitespace. It is inlined for the common case of none.
func (s *scanner) ws() {
	if s.i < len(s.b) && s.b[s.i] > ' ' {
		return
	}
	s.wsSlow()
}

// wsSlow is ws, skipping a line's indentation eight spaces at a time
// (Stripe indents its JSON).
func (s *scanner) wsSlow() {
	b, i := s.b, s.i
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\r':
			i++
		case '\n':
			i++
			for i+8 <= len(b) && binary.LittleEndian.Uint64(b[i:]) == swarLo*' ' {
				i += 8
			}
		default:
			s.i = i
			return
		}
	}
	s.i = i
}

// The constants of SWAR (SIMD within a register) tests of 8 bytes.
const (
	swarLo = 0x0101010101010101
	swarHi = 0x8080808080808080
)

// plainByte is true for the bytes plainString accepts within a string:
// printable ASCII but for '"' and '\\'.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str scans the string at b[i] ('"'): tok is its bytes, quotes included,
// and plain reports that it has neither escapes nor bytes outside
// printable ASCII, so that its value is tok without the quotes. ok is
// false for an invalid string: one that does not end, has a control
// character or an escape JSON does not have.
func (s *scanner) str() (tok []byte, plain, ok bool) {
	b, i := s.b, s.i+1
	plain = true
	for {
		// Eight bytes at a time while none may be special: a control
		// character, '"', '\\', DEL or beyond ASCII.
		for i+8 <= len(b) {
			w := binary.LittleEndian.Uint64(b[i:])
			q, bs := w^(swarLo*'"'), w^(swarLo*'\\')
			special := (w - swarLo*0x20) &^ w // a byte below 0x20
			special |= (q - swarLo) &^ q      // a '"'
			special |= (bs - swarLo) &^ bs    // a '\\'
			special |= w | (w + swarLo)       // DEL or a byte with its high bit
			if special &= swarHi; special != 0 {
				// The lowest byte flagged is special; those above it
				// may be flagged only by its borrow or carry.
				i += bits.TrailingZeros64(special) / 8
				goto special
			}
			i += 8
		}
		for i < len(b) && plainByte[b[i]] {
			i++
		}
	special:
		if i >= len(b) {
			return nil, false, false
		}
		switch c := b[i]; {
		case c == '"':
			tok = b[s.i : i+1]
			s.i = i + 1
			return tok, plain, true
		case c == '\\':
			plain = false
			if i+1 >= len(b) {
				return nil, false, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return nil, false, false
				}
				i += 6
			default:
				return nil, false, false
			}
		case c < 0x20:
			return nil, false, false
		default: // DEL or beyond ASCII: valid, not plain
			plain = false
			i++
		}
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// number scans the number at b[i] by JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?. What follows it is left
// to the caller, which accepts only a delimiter there (so 01 fails).
func (s *scanner) number() bool {
	b, i := s.b, s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return false
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return false
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return false
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	s.i = i
	return true
}

// lit scans the literal word (true, false or null) at b[i].
func (s *scanner) lit(word string) bool {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return false
	}
	s.i += len(word)
	return true
}

// skip validates and skips the value at b[i], itself within depth
// objects and arrays.
func (s *scanner) skip(depth int) bool {
	b := s.b
	if s.i >= len(b) {
		return false
	}
	switch b[s.i] {
	case '"':
		_, _, ok := s.str()
		return ok
	case '{':
		if depth >= scanMaxDepth {
			return false
		}
		s.i++
		for n := 0; ; n++ {
			_, done, ok := s.next(n)
			if !ok {
				return false
			}
			if done {
				return true
			}
			if !s.skip(depth + 1) {
				return false
			}
		}
	case '[':
		if depth >= scanMaxDepth {
			return false
		}
		s.i++
		s.ws()
		if s.i < len(b) && b[s.i] == ']' {
			s.i++
			return true
		}
		for {
			if !s.skip(depth + 1) {
				return false
			}
			s.ws()
			if s.i >= len(b) {
				return false
			}
			switch b[s.i] {
			case ',':
				s.i++
				s.ws()
			case ']':
				s.i++
				return true
			default:
				return false
			}
		}
	case 't':
		return s.lit("true")
	case 'f':
		return s.lit("false")
	case 'n':
		return s.lit("null")
	}
	return s.number()
}

// value validates and skips the value at b[i] as skip does, and returns
// its bytes.
func (s *scanner) value(depth int) (tok []byte, ok bool) {
	start := s.i
	if !s.skip(depth) {
		return nil, false
	}
	return s.b[start:s.i], true
}

// next reads the next member of an object whose '{' is read and which
// has n members before: it returns the member's key and leaves b[i] at
// its value; or done when it reads the object's closing '}' instead.
func (s *scanner) next(n int) (key keyBytes, done, ok bool) {
	b := s.b
	s.ws()
	if s.i >= len(b) {
		return keyBytes{}, false, false
	}
	if b[s.i] == '}' {
		s.i++
		return keyBytes{}, true, true
	}
	if n > 0 {
		if b[s.i] != ',' {
			return keyBytes{}, false, false
		}
		s.i++
		s.ws()
		if s.i >= len(b) {
			return keyBytes{}, false, false
		}
	}
	if b[s.i] != '"' {
		return keyBytes{}, false, false
	}
	tok, plain, ok := s.str()
	if !ok {
		return keyBytes{}, false, false
	}
	s.ws()
	if s.i >= len(b) || b[s.i] != ':' {
		return keyBytes{}, false, false
	}
	s.i++
	s.ws()
	if s.i >= len(b) {
		return keyBytes{}, false, false
	}
	return keyBytes{tok, plain}, false, true
}

// keyBytes is an object key as read: tok is its string token, quotes
// included; plain says it has neither escapes nor bytes beyond printable
// ASCII, so that name() is the key.
type keyBytes struct {
	tok   []byte
	plain bool
}

func (k keyBytes) name() []byte { return k.tok[1 : len(k.tok)-1] }

// Field matches. encoding/json matches a key to the field of the same
// name or, failing that, to one whose name it equals case-insensitively
// (Unicode simple folding: ſ is s, the Kelvin sign K is k). The scanner
// takes a key only where it is exactly a field's name; a key that
// encoding/json would match otherwise, or might (escapes, bytes beyond
// ASCII), makes it give up (keyFolds). No field name has an upper-case
// letter, nor a byte beyond ASCII.
const (
	keyUnknown = -1 // no field: the value is skipped
	keyFolds   = -2 // give up
)

// fieldOf returns the index in names of the field key names exactly,
// keyUnknown or keyFolds. index, when not nil, is a faster names.Index.
func fieldOf(key keyBytes, names []string, index func([]byte) int) int {
	if !key.plain {
		return keyFolds
	}
	k := key.name()
	if index != nil {
		if f := index(k); f != keyUnknown {
			return f
		}
	} else {
		for f, name := range names {
			if string(k) == name {
				return f
			}
		}
	}
	// Not a field's name: does it fold to one? Only ASCII is left here,
	// where folding is upper to lower case.
	upper := false
	for _, c := range k {
		if 'A' <= c && c <= 'Z' {
			upper = true
			break
		}
	}
	if upper {
		for _, name := range names {
			if asciiEqualFold(k, name) {
				return keyFolds
			}
		}
	}
	return keyUnknown
}

// asciiEqualFold reports whether k and name are equal but for the case
// of ASCII letters.
func asciiEqualFold(k []byte, name string) bool {
	if len(k) != len(name) {
		return false
	}
	for i, c := range k {
		d := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

// members scans the object at b[i] ('{'), itself within depth objects and
// arrays, as encoding/json decodes an object into a struct whose fields'
// JSON names are names (in the struct's order; index, when not nil,
// finds a name's position faster): it skips the value of a key of no
// field, and has field read the value of each field's key, once; a key
// twice, or one that folds to a field's name, fails it.
func (s *scanner) members(depth int, names []string, index func([]byte) int, field func(f, depth int) bool) bool {
	if depth >= scanMaxDepth {
		return false
	}
	s.i++ // '{'
	var seen uint64
	for n := 0; ; n++ {
		key, done, ok := s.next(n)
		if !ok {
			return false
		}
		if done {
			return true
		}
		f := fieldOf(key, names, index)
		switch f {
		case keyFolds:
			return false
		case keyUnknown:
			if !s.skip(depth + 1) {
				return false
			}
			continue
		}
		if seen&(1<<f) != 0 {
			return false
		}
		seen |= 1 << f
		if !field(f, depth+1) {
			return false
		}
	}
}

// The fields of oneEvent, by JSON name.
var eventNames = []string{"id", "object", "type", "created", "api_version", "livemode", "account", "data"}

const (
	evID = iota
	evObject
	evType
	evCreated
	evAPIVersion
	evLivemode
	evAccount
	evData
)

func eventIndex(k []byte) int {
	switch string(k) {
	case "id":
		return evID
	case "object":
		return evObject
	case "type":
		return evType
	case "created":
		return evCreated
	case "api_version":
		return evAPIVersion
	case "livemode":
		return evLivemode
	case "account":
		return evAccount
	case "data":
		return evData
	}
	return keyUnknown
}

// The fields of oneObject, by JSON name.
var objectNames = []string{"id", "object", "customer", "customer_account", "charge", "invoice", "payment_intent",
	"subscription", "email", "name", "metadata", "status", "cancel_at_period_end", "current_period_end", "items",
	"amount_paid", "amount_due", "currency", "parent", "lines"}

const (
	obID = iota
	obObject
	obCustomer
	obCustomerAcct
	obCharge
	obInvoice
	obPaymentIntent
	obSubscription
	obEmail
	obName
	obMetadata
	obStatus
	obCancelAtPeriodEnd
	obCurrentPeriodEnd
	obItems
	obAmountPaid
	obAmountDue
	obCurrency
	obParent
	obLines
)

func objectIndex(k []byte) int {
	switch string(k) {
	case "id":
		return obID
	case "object":
		return obObject
	case "customer":
		return obCustomer
	case "customer_account":
		return obCustomerAcct
	case "charge":
		return obCharge
	case "invoice":
		return obInvoice
	case "payment_intent":
		return obPaymentIntent
	case "subscription":
		return obSubscription
	case "email":
		return obEmail
	case "name":
		return obName
	case "metadata":
		return obMetadata
	case "status":
		return obStatus
	case "cancel_at_period_end":
		return obCancelAtPeriodEnd
	case "current_period_end":
		return obCurrentPeriodEnd
	case "items":
		return obItems
	case "amount_paid":
		return obAmountPaid
	case "amount_due":
		return obAmountDue
	case "currency":
		return obCurrency
	case "parent":
		return obParent
	case "lines":
		return obLines
	}
	return keyUnknown
}

// The fields of the other structs, by JSON name. The structs' fields
// here are in these orders.
var (
	dataNames        = []string{"object"}                                                    // oneEvent.Data
	listNames        = []string{"data"}                                                      // oneObject.Items, wireInvoiceLines
	itemNames        = []string{"id", "price", "current_period_start", "current_period_end"} // SubscriptionItem
	idNames          = []string{"id"}                                                        // SubscriptionItem.Price
	lineNames        = []string{"subscription", "parent"}                                    // wireInvoiceLine
	lineParentNames  = []string{"subscription_item_details", "invoice_item_details"}         // wireInvoiceLine.Parent
	subscriptionName = []string{"subscription"}                                              // the details
	parentNames      = []string{"type", "subscription_details"}                              // wireInvoiceParent
)

// eventObject scans the top-level object into ev.
func (s *scanner) eventObject(ev *oneEvent) bool {
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return false
	}
	return s.members(0, eventNames, eventIndex, func(f, depth int) bool {
		switch f {
		case evID:
			return s.stringField(&ev.ID)
		case evObject:
			return s.stringPtrField(&ev.Object)
		case evType:
			return s.stringField(&ev.Type)
		case evCreated:
			tok, ok := s.value(depth)
			return ok && ev.Created.UnmarshalJSON(tok) == nil
		case evAPIVersion:
			return s.stringField(&ev.APIVersion)
		case evLivemode:
			return s.boolField(&ev.Livemode)
		case evAccount:
			return s.stringField(&ev.Account)
		case evData:
			// An object (null, or a type error, is left to encoding/json),
			// whose object is an object too: encoding/json decodes it into
			// the pointer Data.Object holds, ev.object; null would set
			// Data.Object to nil, which is left to it as well.
			if s.b[s.i] != '{' {
				return false
			}
			return s.members(depth, dataNames, nil, func(_, depth int) bool {
				return s.b[s.i] == '{' && s.objectObject(&ev.object, depth)
			})
		}
		return false
	})
}

// objectObject scans data.object, at b[i] ('{'), into o.
func (s *scanner) objectObject(o *oneObject, depth int) bool {
	return s.members(depth, objectNames, objectIndex, func(f, depth int) bool {
		switch f {
		case obID:
			return s.stringField(&o.ID)
		case obObject:
			return s.stringField(&o.Object)
		case obCustomer:
			return s.idField(&o.Customer, depth)
		case obCustomerAcct:
			return s.idField(&o.CustomerAcct, depth)
		case obCharge:
			return s.idField(&o.Charge, depth)
		case obInvoice:
			return s.idField(&o.Invoice, depth)
		case obPaymentIntent:
			return s.idField(&o.PaymentIntent, depth)
		case obSubscription:
			return s.idField(&o.Subscription, depth)
		case obEmail:
			return s.stringField(&o.Email)
		case obName:
			return s.stringField(&o.Name)
		case obMetadata:
			return s.stringMapField(&o.Metadata, depth)
		case obStatus:
			return s.stringField(&o.Status)
		case obCancelAtPeriodEnd:
			return s.boolField(&o.CancelAtPeriodEnd)
		case obCurrentPeriodEnd:
			return s.int64PtrField(&o.CurrentPeriodEnd)
		case obItems:
			return s.structField(depth, listNames, func(_, depth int) bool {
				return sliceField(s, &o.Items.Data, depth, s.subscriptionItem)
			})
		case obAmountPaid:
			return s.int64Field(&o.AmountPaid)
		case obAmountDue:
			return s.int64Field(&o.AmountDue)
		case obCurrency:
			return s.stringField(&o.Currency)
		case obParent:
			return structPtrField(s, &o.Parent, depth, parentNames, func(p *wireInvoiceParent, f, depth int) bool {
				if f == 0 {
					return s.stringField(&p.Type)
				}
				return s.subscriptionDetails(&p.SubscriptionDetails, depth)
			})
		case obLines:
			return s.structField(depth, listNames, func(_, depth int) bool {
				return sliceField(s, &o.Lines.Data, depth, s.invoiceLine)
			})
		}
		return false
	})
}

// subscriptionItem scans an item of a subscription's items.data, at b[i]
// ('{'), into it.
func (s *scanner) subscriptionItem(it *SubscriptionItem, depth int) bool {
	return s.members(depth, itemNames, nil, func(f, depth int) bool {
		switch f {
		case 0:
			return s.stringField(&it.ID)
		case 1:
			return s.structField(depth, idNames, func(_, _ int) bool { return s.stringField(&it.Price.ID) })
		case 2:
			return s.int64Field(&it.CurrentPeriodStart)
		default:
			return s.int64Field(&it.CurrentPeriodEnd)
		}
	})
}

// invoiceLine scans a line of an invoice's lines.data, at b[i] ('{'),
// into l.
func (s *scanner) invoiceLine(l *wireInvoiceLine, depth int) bool {
	return s.members(depth, lineNames, nil, func(f, depth int) bool {
		if f == 0 {
			return s.idField(&l.Subscription, depth)
		}
		return structPtrField(s, &l.Parent, depth, lineParentNames, func(p *wireInvoiceLineParent, f, depth int) bool {
			if f == 0 {
				return s.subscriptionDetails(&p.SubscriptionItemDetails, depth)
			}
			return s.subscriptionDetails(&p.InvoiceItemDetails, depth)
		})
	})
}

// subscriptionDetails scans a pointer to a struct of one subscription
// (subscription_details, subscription_item_details,
// invoice_item_details).
func (s *scanner) subscriptionDetails(dst **subscriptionRef, depth int) bool {
	return structPtrField(s, dst, depth, subscriptionName, func(d *subscriptionRef, _, depth int) bool {
		return s.idField(&d.Subscription, depth)
	})
}

// The fields' decoders read the value at b[i] (b[i] exists), itself
// within depth objects and arrays, into their field as encoding/json
// does, or return false: for a value of another type than the field's,
// which encoding/json refuses, or anything they cannot vouch for.

// stringField: a string, or null, which leaves the field as it is.
func (s *scanner) stringField(dst *string) bool {
	switch s.b[s.i] {
	case '"':
		v, ok := s.stringValue()
		if ok {
			*dst = v
		}
		return ok
	case 'n':
		return s.lit("null")
	}
	return false
}

// stringValue reads the string at b[i] ('"'): a plain one as it is, any
// other as json.Unmarshal unquotes it (invalid UTF-8 becoming U+FFFD).
func (s *scanner) stringValue() (string, bool) {
	tok, plain, ok := s.str()
	if !ok {
		return "", false
	}
	if plain {
		return string(tok[1 : len(tok)-1]), true
	}
	var v string
	if json.Unmarshal(tok, &v) != nil {
		return "", false
	}
	return v, true
}

// stringPtrField: a string, or null, which sets the pointer to nil.
func (s *scanner) stringPtrField(dst **string) bool {
	switch s.b[s.i] {
	case '"':
		v, ok := s.stringValue()
		if ok {
			*dst = &v
		}
		return ok
	case 'n':
		*dst = nil
		return s.lit("null")
	}
	return false
}

// boolField: true, false, or null, which leaves the field as it is.
func (s *scanner) boolField(dst *bool) bool {
	switch s.b[s.i] {
	case 't':
		*dst = true
		return s.lit("true")
	case 'f':
		*dst = false
		return s.lit("false")
	case 'n':
		return s.lit("null")
	}
	return false
}

// int64Value reads the number at b[i] as encoding/json reads one into an
// int64: strconv.ParseInt of its bytes, which refuses a fraction, an
// exponent and overflow.
func (s *scanner) int64Value() (int64, bool) {
	start := s.i
	if !s.number() {
		return 0, false
	}
	n, err := strconv.ParseInt(string(s.b[start:s.i]), 10, 64)
	return n, err == nil
}

// int64Field: a number, or null, which leaves the field as it is.
func (s *scanner) int64Field(dst *int64) bool {
	switch c := s.b[s.i]; {
	case c == 'n':
		return s.lit("null")
	case c == '-' || isDigit(c):
		n, ok := s.int64Value()
		if ok {
			*dst = n
		}
		return ok
	}
	return false
}

// int64PtrField: a number, or null, which sets the pointer to nil.
func (s *scanner) int64PtrField(dst **int64) bool {
	switch c := s.b[s.i]; {
	case c == 'n':
		*dst = nil
		return s.lit("null")
	case c == '-' || isDigit(c):
		n, ok := s.int64Value()
		if ok {
			*dst = &n
		}
		return ok
	}
	return false
}

// idField: what (*ID).UnmarshalJSON makes of the value's bytes, as
// encoding/json hands them to it (null included).
func (s *scanner) idField(dst *ID, depth int) bool {
	tok, ok := s.value(depth)
	return ok && dst.UnmarshalJSON(tok) == nil
}

// structField: an object, read by members into a struct field (which
// field knows), or null, which leaves it as it is.
func (s *scanner) structField(depth int, names []string, field func(f, depth int) bool) bool {
	switch s.b[s.i] {
	case '{':
		return s.members(depth, names, nil, field)
	case 'n':
		return s.lit("null")
	}
	return false
}

// structPtrField: null, which sets the pointer to nil, or an object, read
// by members into the struct the pointer is set to, which is new (each
// field is read once, so encoding/json finds it nil and allocates it too).
func structPtrField[T any](s *scanner, dst **T, depth int, names []string, field func(p *T, f, depth int) bool) bool {
	switch s.b[s.i] {
	case '{':
		p := new(T)
		*dst = p
		return s.members(depth, names, nil, func(f, depth int) bool { return field(p, f, depth) })
	case 'n':
		*dst = nil
		return s.lit("null")
	}
	return false
}

// sliceField: null, which sets the slice to nil, or an array of objects,
// each read by elem into a new element: [] sets the slice empty, not nil,
// as encoding/json does. It leaves a null element (a zero one in
// encoding/json) to encoding/json.
func sliceField[T any](s *scanner, dst *[]T, depth int, elem func(e *T, depth int) bool) bool {
	b := s.b
	switch b[s.i] {
	case '[':
	case 'n':
		*dst = nil
		return s.lit("null")
	default:
		return false
	}
	if depth >= scanMaxDepth {
		return false
	}
	s.i++
	out := []T{}
	s.ws()
	if s.i < len(b) && b[s.i] == ']' {
		s.i++
		*dst = out
		return true
	}
	for {
		if s.i >= len(b) || b[s.i] != '{' {
			return false
		}
		var zero T
		out = append(out, zero)
		if !elem(&out[len(out)-1], depth+1) {
			return false
		}
		s.ws()
		if s.i >= len(b) {
			return false
		}
		switch b[s.i] {
		case ',':
			s.i++
			s.ws()
		case ']':
			s.i++
			*dst = out
			return true
		default:
			return false
		}
	}
}

// stringMapField: null, which sets the map to nil, or an object of
// strings (or null: ""), each key set to its value in a new map, the last
// of a key repeated winning, as encoding/json decodes into a nil map.
func (s *scanner) stringMapField(dst *map[string]string, depth int) bool {
	switch s.b[s.i] {
	case '{':
	case 'n':
		*dst = nil
		return s.lit("null")
	default:
		return false
	}
	if depth >= scanMaxDepth {
		return false
	}
	s.i++
	m := make(map[string]string)
	for n := 0; ; n++ {
		key, done, ok := s.next(n)
		if !ok {
			return false
		}
		if done {
			*dst = m
			return true
		}
		var k string
		if key.plain {
			k = string(key.name())
		} else if json.Unmarshal(key.tok, &k) != nil {
			return false
		}
		var v string
		if !s.stringField(&v) {
			return false
		}
		m[k] = v
	}
}
