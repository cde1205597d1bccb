// Package macpool reuses HMAC-SHA256 states, one pool per key.
//
// hmac.New allocates two SHA-256 states and hashes the key's inner and
// outer pads, on every webhook verified and every delivery signed; a
// state taken from its key's pool is Reset instead, which restores the
// pads' hashed state without hashing them again. Keys are the secrets of
// a process (webhook secrets, endpoint secrets): at most maxKeys of them
// get a pool, and any key past that gets a new state each time, so that
// a process with ever more endpoints cannot grow the cache without bound.
package macpool

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"sync"
	"sync/atomic"
)

// maxKeys bounds the keys that get a pool.
const maxKeys = 1024

var (
	pools sync.Map // string key → *sync.Pool of hash.Hash
	count atomic.Int64
)

// Get returns an HMAC-SHA256 state for key, reset. Give it back with Put
// when done; a state not given back is collected as usual.
func Get(key string) hash.Hash {
	p := pool(key)
	if p == nil {
		return hmac.New(sha256.New, []byte(key))
	}
	if h, ok := p.Get().(hash.Hash); ok {
		h.Reset()
		return h
	}
	return hmac.New(sha256.New, []byte(key))
}

// Put returns h, got from Get(key), for reuse.
func Put(key string, h hash.Hash) {
	if p := pool(key); p != nil {
		p.Put(h)
	}
}

// pool returns key's pool, making it if fewer than maxKeys exist; nil
// past that.
func pool(key string) *sync.Pool {
	if p, ok := pools.Load(key); ok {
		return p.(*sync.Pool)
	}
	// A slot is taken before the pool is stored, so that racing keys
	// cannot pass the bound; a key stored meanwhile gives it back.
	if count.Add(1) > maxKeys {
		count.Add(-1)
		return nil
	}
	p, loaded := pools.LoadOrStore(key, &sync.Pool{})
	if loaded {
		count.Add(-1)
	}
	return p.(*sync.Pool)
}
