package bench

import (
	"strconv"
	"strings"
	"time"

	"github.com/hookd/hookd/internal/jsonw"
)

// benchRender renders the n-th event of the customer cus_<suffix>, a step
// on obj: gen.go's objects, with what gen.go fills in at random or from
// the event's time made a function of the arguments, so that the same
// arguments give the same bytes. It writes the bytes json.Marshal gives
// for those objects as maps (keys sorted; TestBenchRenderMatchesMaps
// holds it to that) without building them: the generator shares the
// machine with the hookd it measures, and encoding/json's maps were a
// quarter of its CPU.
func benchRender(suffix string, n, base int64, step benchStep, obj benchObjects) (id string, body []byte) {
	id = "evt_" + suffix + "_" + strconv.FormatInt(n, 10)
	customer := "cus_" + suffix
	created := base + n
	b := make([]byte, 0, 768)
	b = append(b, `{"api_version":"2024-06-20","created":`...)
	b = strconv.AppendInt(b, created, 10)
	b = append(b, `,"data":{"object":`...)
	switch step.Type {
	case "customer.created", "customer.updated", "customer.deleted":
		b = append(b, `{"created":`...)
		b = strconv.AppendInt(b, base, 10)
		if step.Type == "customer.deleted" {
			b = append(b, `,"deleted":true`...)
		}
		b = append(b, `,"email":`...)
		b = jsonw.AppendString(b, suffix+"-"+strconv.FormatInt(n, 10)+"@example.com")
		b = append(b, `,"id":`...)
		b = jsonw.AppendString(b, customer)
		b = append(b, `,"livemode":false,"metadata":{"n":"`...)
		b = strconv.AppendInt(b, n, 10)
		b = append(b, `","source":"hookd bench"},"name":`...)
		b = jsonw.AppendString(b, "Test "+suffix)
		b = append(b, `,"object":"customer"}`...)
	case "customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted":
		status := step.Status
		if status == "" {
			status = "active"
			if step.Type == "customer.subscription.deleted" {
				status = "canceled"
			}
		}
		at := time.Unix(created, 0)
		b = append(b, `{"cancel_at_period_end":false,"created":`...)
		b = strconv.AppendInt(b, obj.subCreated, 10)
		b = append(b, `,"current_period_end":`...)
		b = strconv.AppendInt(b, at.AddDate(0, 1, 0).Unix(), 10)
		b = append(b, `,"current_period_start":`...)
		b = strconv.AppendInt(b, created, 10)
		b = append(b, `,"customer":`...)
		b = jsonw.AppendString(b, customer)
		b = append(b, `,"id":`...)
		b = jsonw.AppendString(b, obj.subscription)
		b = append(b, `,"items":{"data":[{"id":`...)
		b = jsonw.AppendString(b, "si_"+strings.TrimPrefix(obj.subscription, "sub_")+"_0")
		b = append(b, `,"object":"subscription_item","price":{"currency":"usd","id":"price_pro_monthly","object":"price","unit_amount":2000}}],"object":"list"},"livemode":false,"object":"subscription","status":`...)
		b = jsonw.AppendString(b, status)
		b = append(b, '}')
	case "invoice.paid", "invoice.payment_failed":
		paid := step.Type == "invoice.paid"
		b = append(b, `{"amount_due":2000,"amount_paid":`...)
		if paid {
			b = append(b, `2000`...)
		} else {
			b = append(b, `0`...)
		}
		b = append(b, `,"created":`...)
		b = strconv.AppendInt(b, created, 10)
		b = append(b, `,"currency":"usd","customer":`...)
		b = jsonw.AppendString(b, customer)
		b = append(b, `,"id":`...)
		b = jsonw.AppendString(b, obj.invoice)
		b = append(b, `,"livemode":false,"object":"invoice","paid":`...)
		b = strconv.AppendBool(b, paid)
		b = append(b, `,"status":`...)
		if paid {
			b = append(b, `"paid"`...)
		} else {
			b = append(b, `"open"`...)
		}
		b = append(b, `,"subscription":`...)
		b = jsonw.AppendString(b, obj.subscription)
		b = append(b, '}')
	default:
		panic("bench: no renderer for " + step.Type) // the mixes' types are fixed
	}
	b = append(b, `},"id":`...)
	b = jsonw.AppendString(b, id)
	b = append(b, `,"livemode":false,"object":"event","pending_webhooks":1,"request":{"id":`...)
	b = jsonw.AppendString(b, "req_"+suffix+"_"+strconv.FormatInt(n, 10))
	b = append(b, `,"idempotency_key":null},"type":`...)
	b = jsonw.AppendString(b, step.Type)
	b = append(b, '}')
	return id, b
}
