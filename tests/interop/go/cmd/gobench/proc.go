package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuUse is CPU time in µs, split as getrusage and /proc report it.
type cpuUse struct {
	User float64 `json:"user"`
	Sys  float64 `json:"sys"`
}

func (c cpuUse) sub(o cpuUse) cpuUse { return cpuUse{User: c.User - o.User, Sys: c.Sys - o.Sys} }

// cpuNow is this process's CPU time so far, every thread included.
func cpuNow() cpuUse {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return cpuUse{}
	}
	return cpuUse{User: tvMicros(ru.Utime), Sys: tvMicros(ru.Stime)}
}

func tvMicros(tv syscall.Timeval) float64 { return float64(tv.Sec)*1e6 + float64(tv.Usec) }

func durMicros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

// maxRSSKB is getrusage ru_maxrss (KiB on Linux); see the package comment for why it is only informational.
func maxRSSKB() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss
}

// printProc is --vmhwm: another process's memory and CPU, for a parent that may not read /proc.
func printProc(pid int) error {
	hwm, rss := procStatus(fmt.Sprintf("/proc/%d/status", pid))
	cpu, err := procCPU(pid)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"pid": pid, "vmhwm_kb": hwm, "vmrss_kb": rss, "user_us": cpu.User, "sys_us": cpu.Sys,
	})
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times: 100 on every Linux
// architecture Go supports (sysconf needs cgo).
const clockTicks = 100

// procCPU reads utime and stime of a process from /proc/PID/stat.
func procCPU(pid int) (cpuUse, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return cpuUse{}, err
	}
	// The command name (field 2) may hold spaces; the fields after it may not.
	end := strings.LastIndexByte(string(data), ')')
	if end < 0 {
		return cpuUse{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	fields := strings.Fields(string(data[end+1:]))
	// fields[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(fields) < 13 {
		return cpuUse{}, fmt.Errorf("short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return cpuUse{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	const us = 1e6 / clockTicks
	return cpuUse{User: float64(utime) * us, Sys: float64(stime) * us}, nil
}

// procStatus reads VmHWM and VmRSS (KiB) from a /proc/<pid>/status file (0s off Linux).
func procStatus(path string) (hwm, rss int64) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, 0
	}
	field := func(line, name string) (int64, bool) {
		rest, ok := strings.CutPrefix(line, name+":")
		if !ok {
			return 0, false
		}
		kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		return kb, true
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := field(line, "VmHWM"); ok {
			hwm = v
		} else if v, ok := field(line, "VmRSS"); ok {
			rss = v
		}
	}
	return hwm, rss
}
