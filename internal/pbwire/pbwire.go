// Package pbwire holds the field numbers of the hookd.v1 messages that
// hookd reads and writes in wire format by hand (the customer snapshot's
// encoder in actors/customer, the delivery body's reader in
// internal/delivery, the Subscribe message in internal/outbox), in one
// place; a test holds them to the generated descriptors.
package pbwire

import "google.golang.org/protobuf/encoding/protowire"

// hookd.v1.Customer.
const (
	CustomerCustomerID    protowire.Number = 1
	CustomerVersion       protowire.Number = 2
	CustomerEmail         protowire.Number = 3
	CustomerName          protowire.Number = 4
	CustomerDeleted       protowire.Number = 5
	CustomerMetadata      protowire.Number = 6
	CustomerSubscriptions protowire.Number = 7
	CustomerInvoices      protowire.Number = 8
	CustomerUpdatedAt     protowire.Number = 9
	CustomerLivemode      protowire.Number = 10
	CustomerAccount       protowire.Number = 11
)

// hookd.v1.Subscription.
const (
	SubscriptionSubscriptionID    protowire.Number = 1
	SubscriptionStatus            protowire.Number = 2
	SubscriptionCancelAtPeriodEnd protowire.Number = 3
	SubscriptionCurrentPeriodEnd  protowire.Number = 4
	SubscriptionPriceIDs          protowire.Number = 5
)

// hookd.v1.Invoice.
const (
	InvoiceInvoiceID       protowire.Number = 1
	InvoiceSubscriptionID  protowire.Number = 2
	InvoiceStatus          protowire.Number = 3
	InvoiceAmountPaid      protowire.Number = 4
	InvoiceAmountDue       protowire.Number = 5
	InvoiceCurrency        protowire.Number = 6
	InvoicePaymentFailures protowire.Number = 7
)

// hookd.v1.Notification.
const (
	NotificationCursor     protowire.Number = 1
	NotificationCustomerID protowire.Number = 2
	NotificationVersion    protowire.Number = 3
	NotificationKind       protowire.Number = 4
	NotificationEventID    protowire.Number = 5
	NotificationOccurredAt protowire.Number = 6
	NotificationCustomer   protowire.Number = 7
	NotificationAccount    protowire.Number = 8
)

// google.protobuf.Timestamp, and a map<string, string> entry.
const (
	TimestampSeconds protowire.Number = 1
	TimestampNanos   protowire.Number = 2
	MapEntryKey      protowire.Number = 1
	MapEntryValue    protowire.Number = 2
)
