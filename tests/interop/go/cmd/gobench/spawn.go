package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// spawnRun is one child process: CPU (µs) and peak RSS from wait4, wall time, exit code.
type spawnRun struct {
	UserUs   float64 `json:"user_us"`
	SysUs    float64 `json:"sys_us"`
	WallUs   float64 `json:"wall_us"`
	MaxRSSKB int64   `json:"maxrss_kb"`
	Exit     int     `json:"exit"`
}

// spawn is --spawn N -- CMD ARGS: runs the command N times, one after the
// other, and prints every run's rusage (Deno's Command does not expose it),
// plus the last run's output so the caller can check it did what it should.
func spawn(n int, args []string) error {
	if len(args) == 0 {
		return errors.New("--spawn needs a command after --")
	}
	type report struct {
		Runs   []spawnRun `json:"runs"`
		Stdout string     `json:"stdout"`
		Stderr string     `json:"stderr"`
	}
	var rep report
	for i := 0; i < n; i++ {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		start := time.Now()
		err := cmd.Run()
		wall := time.Since(start)
		var exitErr *exec.ExitError
		if err != nil && !errors.As(err, &exitErr) {
			return fmt.Errorf("run %s: %w", args[0], err)
		}
		run := spawnRun{
			UserUs: durMicros(cmd.ProcessState.UserTime()),
			SysUs:  durMicros(cmd.ProcessState.SystemTime()),
			WallUs: durMicros(wall),
			Exit:   cmd.ProcessState.ExitCode(),
		}
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			run.MaxRSSKB = ru.Maxrss
		}
		rep.Runs = append(rep.Runs, run)
		rep.Stdout, rep.Stderr = tail(stdout.String()), tail(stderr.String())
	}
	return json.NewEncoder(os.Stdout).Encode(rep)
}

func tail(s string) string {
	const max = 4096
	if len(s) > max {
		return s[len(s)-max:]
	}
	return s
}
