// Package waitstest holds an in-memory stand-in for store.Waits, so the
// handlers that share waits can be tested together: an event and a
// reconcile racing over one wait, a duplicate event.
package waitstest

import (
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/ec2patch/ec2patch/lambdas/internal/store"
)

// Memory keeps waits the way store.Waits does: a waiting record per target,
// a lookup record per command, a delete conditional on the task token.
type Memory struct {
	mu       sync.Mutex
	waiting  map[string]store.Waiting
	commands map[string]map[string]store.CommandRef // command ID -> execution ID -> lookup
	passes   map[string]int
	// Fail, when set, is returned by every call.
	Fail error
}

// New returns an empty Memory.
func New() *Memory {
	return &Memory{waiting: map[string]store.Waiting{}, commands: map[string]map[string]store.CommandRef{}}
}

func clone(w store.Waiting) store.Waiting {
	w.CommandIDs = slices.Clone(w.CommandIDs)
	w.CommandStatus = maps.Clone(w.CommandStatus)
	return w
}

// Register writes the waiting record (every command pending) and the
// lookup records.
func (m *Memory) Register(_ context.Context, w store.Waiting) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return m.Fail
	}
	w = clone(w)
	w.CommandStatus = map[string]string{}
	for _, id := range w.CommandIDs {
		w.CommandStatus[id] = store.CommandPending
		if m.commands[id] == nil {
			m.commands[id] = map[string]store.CommandRef{}
		}
		m.commands[id][w.ExecutionID] = store.CommandRef{WaitingSK: w.SK(), Account: w.Account, Region: w.Region}
	}
	m.waiting[w.SK()] = w
	return nil
}

// Commands reads a command's lookup records, in execution order.
func (m *Memory) Commands(_ context.Context, id string) ([]store.CommandRef, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return nil, m.Fail
	}
	var refs []store.CommandRef
	for _, exec := range slices.Sorted(maps.Keys(m.commands[id])) {
		refs = append(refs, m.commands[id][exec])
	}
	return refs, nil
}

// RecordStatus sets one command's status on its waiting record.
func (m *Memory) RecordStatus(_ context.Context, sk, id, status string) (store.Waiting, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return store.Waiting{}, false, m.Fail
	}
	w, ok := m.waiting[sk]
	if !ok {
		return store.Waiting{}, false, nil
	}
	if _, mine := w.CommandStatus[id]; !mine {
		return store.Waiting{}, false, nil
	}
	w.CommandStatus[id] = status
	return clone(w), true, nil
}

// CountPass counts a reconcile pass over a waiting record.
func (m *Memory) CountPass(_ context.Context, sk string) (int, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return 0, false, m.Fail
	}
	if _, ok := m.waiting[sk]; !ok {
		return 0, false, nil
	}
	if m.passes == nil {
		m.passes = map[string]int{}
	}
	m.passes[sk]++
	return m.passes[sk], true, nil
}

// Waitings lists every waiting record, in key order.
func (m *Memory) Waitings(context.Context) ([]store.Waiting, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return nil, m.Fail
	}
	var out []store.Waiting
	for _, sk := range slices.Sorted(maps.Keys(m.waiting)) {
		out = append(out, clone(m.waiting[sk]))
	}
	return out, nil
}

// Finish deletes the waiting record if it holds w's token.
func (m *Memory) Finish(_ context.Context, w store.Waiting) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return false, m.Fail
	}
	cur, ok := m.waiting[w.SK()]
	if !ok || cur.TaskToken != w.TaskToken {
		return false, nil
	}
	delete(m.waiting, w.SK())
	return true, nil
}

// Restore puts a waiting record back unless one exists.
func (m *Memory) Restore(_ context.Context, w store.Waiting) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return m.Fail
	}
	if _, ok := m.waiting[w.SK()]; !ok {
		m.waiting[w.SK()] = clone(w)
	}
	return nil
}

// Forget deletes a wait's lookup records.
func (m *Memory) Forget(_ context.Context, w store.Waiting) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return m.Fail
	}
	for _, id := range w.CommandIDs {
		delete(m.commands[id], w.ExecutionID)
		if len(m.commands[id]) == 0 {
			delete(m.commands, id)
		}
	}
	return nil
}

// Get returns one waiting record.
func (m *Memory) Get(sk string) (store.Waiting, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.waiting[sk]
	return clone(w), ok
}

// HasCommand tells whether a command's lookup record exists.
func (m *Memory) HasCommand(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.commands[id]
	return ok
}
