package pbwire

import (
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookdv1 "github.com/hookd/hookd/proto/hookd/v1"
)

// Every constant names the field the generated descriptor gives its
// number, and every field of these messages has a constant: a field added
// to the .proto fails here until the hand-written readers and writers
// know it.
func TestFieldNumbersMatchTheDescriptors(t *testing.T) {
	for _, c := range []struct {
		msg    proto.Message
		fields map[protoreflect.Name]protowire.Number
	}{
		{&hookdv1.Customer{}, map[protoreflect.Name]protowire.Number{
			"customer_id": CustomerCustomerID, "version": CustomerVersion, "email": CustomerEmail, "name": CustomerName,
			"deleted": CustomerDeleted, "metadata": CustomerMetadata, "subscriptions": CustomerSubscriptions,
			"invoices": CustomerInvoices, "updated_at": CustomerUpdatedAt, "livemode": CustomerLivemode, "account": CustomerAccount,
		}},
		{&hookdv1.Subscription{}, map[protoreflect.Name]protowire.Number{
			"subscription_id": SubscriptionSubscriptionID, "status": SubscriptionStatus,
			"cancel_at_period_end": SubscriptionCancelAtPeriodEnd, "current_period_end": SubscriptionCurrentPeriodEnd,
			"price_ids": SubscriptionPriceIDs,
		}},
		{&hookdv1.Invoice{}, map[protoreflect.Name]protowire.Number{
			"invoice_id": InvoiceInvoiceID, "subscription_id": InvoiceSubscriptionID, "status": InvoiceStatus,
			"amount_paid": InvoiceAmountPaid, "amount_due": InvoiceAmountDue, "currency": InvoiceCurrency,
			"payment_failures": InvoicePaymentFailures,
		}},
		{&hookdv1.Notification{}, map[protoreflect.Name]protowire.Number{
			"cursor": NotificationCursor, "customer_id": NotificationCustomerID, "version": NotificationVersion,
			"kind": NotificationKind, "event_id": NotificationEventID, "occurred_at": NotificationOccurredAt,
			"customer": NotificationCustomer, "account": NotificationAccount,
		}},
		{&timestamppb.Timestamp{}, map[protoreflect.Name]protowire.Number{"seconds": TimestampSeconds, "nanos": TimestampNanos}},
	} {
		md := c.msg.ProtoReflect().Descriptor()
		if md.Fields().Len() != len(c.fields) {
			t.Errorf("%s has %d fields, pbwire knows %d", md.FullName(), md.Fields().Len(), len(c.fields))
		}
		for name, num := range c.fields {
			fd := md.Fields().ByName(name)
			if fd == nil || fd.Number() != num {
				t.Errorf("%s.%s: pbwire has %d, the descriptor %v", md.FullName(), name, num, fd)
			}
		}
	}
	entry := (&hookdv1.Customer{}).ProtoReflect().Descriptor().Fields().ByName("metadata").Message()
	if entry.Fields().ByName("key").Number() != MapEntryKey || entry.Fields().ByName("value").Number() != MapEntryValue {
		t.Error("map entry numbers")
	}
}
