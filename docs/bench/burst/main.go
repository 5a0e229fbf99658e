// Command burst is the load driver of the publish-burst benchmark: it
// requests every URL of a list exactly once, the next URL going to the
// first free client, and prints "requests seconds req/s errors".
//
//	burst -c 8 urls.txt
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	clients := flag.Int("c", 8, "concurrent clients")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: burst [-c clients] urls.txt")
		os.Exit(2)
	}
	urls, err := readLines(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	client := &http.Client{
		Timeout:   2 * time.Minute,
		Transport: &http.Transport{MaxIdleConnsPerHost: *clients, DisableCompression: true},
	}
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range *clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(len(urls)); i = next.Add(1) - 1 {
				if !fetch(client, urls[i]) {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	s := time.Since(start).Seconds()
	fmt.Printf("%d %.2f %.2f %d\n", len(urls), s, float64(len(urls))/s, failed.Load())
	if failed.Load() > 0 {
		os.Exit(1)
	}
}

// fetch reads the whole answer; only a 200 counts.
func fetch(c *http.Client, url string) bool {
	res, err := c.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return false
	}
	defer res.Body.Close()
	_, err = io.Copy(io.Discard, res.Body)
	if res.StatusCode != http.StatusOK || err != nil {
		fmt.Fprintln(os.Stderr, url, res.Status, err)
		return false
	}
	return true
}

func readLines(name string) ([]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if sc.Text() != "" {
			lines = append(lines, sc.Text())
		}
	}
	return lines, sc.Err()
}
