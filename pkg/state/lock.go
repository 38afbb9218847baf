package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// LockInfo describes who holds a state lock. It is written into the lock file
// by the holder, for the error message of whoever waits.
type LockInfo struct {
	PID      int       `json:"pid"`
	Hostname string    `json:"hostname"`
	Command  string    `json:"command"`
	Since    time.Time `json:"since"`
}

func (i LockInfo) String() string {
	return fmt.Sprintf("pid %d on host %s (%q, since %s)", i.PID, i.Hostname, i.Command, i.Since.Format(time.RFC3339))
}

// LockedError is returned by Open when another process (or another File in
// this process) kept the lock for longer than Options.LockTimeout.
type LockedError struct {
	StatePath string
	LockPath  string
	Waited    time.Duration
	Holder    *LockInfo // nil if the holder had not written its details yet
}

func (e *LockedError) Error() string {
	holder := "another convsync (its details were not readable)"
	if e.Holder != nil {
		holder = e.Holder.String()
	}
	return fmt.Sprintf("state file %s is locked by %s; gave up after waiting %s. "+
		"Wait for that run to finish (or stop it) and try again, or wait longer with a bigger lock timeout. "+
		"The lock is an flock on %s: the kernel releases it when the holder exits, so it is never stale, and deleting the file does not help",
		e.StatePath, holder, e.Waited, e.LockPath)
}

// lockFile is an exclusive flock held on path+".lock". Locking a separate file
// lets the state file itself be replaced atomically by rename.
type lockFile struct {
	f *os.File
}

func acquireLock(statePath string, opts Options) (*lockFile, error) {
	lockPath := statePath + ".lock"
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot open the lock file for state file %s: %w", statePath, err)
	}
	started := time.Now()
	deadline := started.Add(opts.LockTimeout)
	poll := 10 * time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("cannot lock %s for state file %s: %w", lockPath, statePath, err)
		}
		if opts.onLockBusy != nil {
			opts.onLockBusy()
		}
		now := time.Now()
		if !now.Before(deadline) {
			f.Close()
			return nil, &LockedError{StatePath: statePath, LockPath: lockPath, Waited: now.Sub(started).Round(time.Millisecond), Holder: readLockInfo(lockPath)}
		}
		time.Sleep(min(poll, deadline.Sub(now)))
		poll = min(poll*2, 500*time.Millisecond)
	}
	info := LockInfo{PID: os.Getpid(), Command: opts.Holder, Since: time.Now().UTC().Truncate(time.Second)}
	info.Hostname, _ = os.Hostname()
	data, _ := json.Marshal(info)
	// Write in place: the lock is on this inode, so the file must not be replaced.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt(append(data, '\n'), 0)
	}
	return &lockFile{f: f}, nil
}

func readLockInfo(lockPath string) *LockInfo {
	data, err := os.ReadFile(lockPath)
	if err != nil {
		return nil
	}
	var info LockInfo
	if json.Unmarshal(data, &info) != nil || info.PID == 0 {
		return nil
	}
	return &info
}

// release clears the holder details and drops the lock. The lock file stays:
// removing it would let a waiter that already opened it and a newcomer that
// creates a new one both believe they hold the lock.
func (l *lockFile) release() error {
	_ = l.f.Truncate(0)
	err := syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	return err
}
