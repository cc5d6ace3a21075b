package process

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// procStat is what ChainDock reads of /proc/<pid>/stat.
type procStat struct {
	State     byte
	PGID      int
	StartTime uint64 // clock ticks after boot; with the PID, names a process uniquely
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// The command name is in parentheses and may hold spaces or ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f))
	}
	pgid, err := strconv.Atoi(f[2])
	if err != nil {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat pgrp: %w", pid, err)
	}
	st, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat starttime: %w", pid, err)
	}
	return procStat{State: f[0][0], PGID: pgid, StartTime: st}, nil
}

// processStartTime returns the start time of pid, for recording.
func processStartTime(pid int) (uint64, error) {
	st, err := readProcStat(pid)
	if err != nil {
		return 0, err
	}
	return st.StartTime, nil
}

// alive reports whether pid is the same living process that started at
// start: not gone, not a zombie, not a new process under a reused PID.
func alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	st, err := readProcStat(pid)
	if err != nil {
		return false
	}
	return st.StartTime == start && st.State != 'Z' && st.State != 'X'
}
