package stripe

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	testSecret = "whsec_test_primary_0123456789"
	// A minimal valid event, routed by data.object.customer.
	testEvent = `{"id":"evt_test_1","object":"event","type":"invoice.paid","created":1699999990,` +
		`"api_version":"2020-03-02","livemode":false,` +
		`"data":{"object":{"id":"in_1","object":"invoice","customer":"cus_1","subscription":"sub_1"}}}`
)

// testNow is the clock the signature tests pin.
var testNow = time.Unix(1_700_000_000, 0)
