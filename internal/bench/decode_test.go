package bench

import (
	"errors"
	"testing"

	"github.com/hookd/hookd/provider/stripe"
)

// benchDecodeCorpus renders the first events of a few customers of each
// mix, as `hookd bench` sends them.
func benchDecodeCorpus() [][]byte {
	var corpus [][]byte
	for _, mix := range benchMixes {
		for cu := range 4 {
			for n := range int64(2 + 2*len(benchStripeCycle)) {
				_, body := benchEventFor(mix, "decode", cu, n, benchTestBase)
				corpus = append(corpus, body)
			}
		}
	}
	return corpus
}

// BenchmarkDecodeEnvelopeThenObject is what hookd did per bench event
// before stripe.Decode: the gateway's DecodeEnvelope, then the grain's
// DecodeObject of the same payload.
func BenchmarkDecodeEnvelopeThenObject(b *testing.B) {
	benchmarkDecode(b, func(raw []byte) error {
		env, err := stripe.DecodeEnvelope(raw)
		if err != nil {
			return err
		}
		_, err = stripe.DecodeObject(env.GetObjectType(), raw)
		return err
	})
}

// BenchmarkDecode is stripe.Decode over the same events, as the gateway
// decodes each webhook now.
func BenchmarkDecode(b *testing.B) {
	benchmarkDecode(b, func(raw []byte) error {
		_, _, objErr, err := stripe.Decode(raw)
		return errors.Join(err, objErr)
	})
}

// BenchmarkDecodeEnvelopeOnly is DecodeEnvelope alone: what a gateway of
// its own (--ingest-addr) spent per event before stripe.Decode.
func BenchmarkDecodeEnvelopeOnly(b *testing.B) {
	benchmarkDecode(b, func(raw []byte) error {
		_, err := stripe.DecodeEnvelope(raw)
		return err
	})
}

// benchmarkDecode runs decode over benchDecodeCorpus, one event per
// iteration in turn, so ns/op is the mean over the mixes.
func benchmarkDecode(b *testing.B, decode func(raw []byte) error) {
	corpus := benchDecodeCorpus()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := decode(corpus[i%len(corpus)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
