package main

import (
	"fmt"
	"io"
	"os"

	"image-proxy/request"
)

// sign prints each URL given (a path and query, such as
// '/photos/cat.jpg?size=400&format=webp') with the sig parameter the
// server's current key gives it, reading the key from the same settings as
// serve.
func sign(urls []string, stdout, stderr io.Writer) int {
	if len(urls) == 0 {
		fmt.Fprintln(stderr, "usage: image-proxy sign '/photos/cat.jpg?size=400&format=webp' [more URLs]")
		return 2
	}
	s, err := loadSettings(os.LookupEnv, ".env")
	if err != nil {
		fmt.Fprintln(stderr, "image-proxy:", err)
		return 2
	}
	for _, u := range urls {
		signed, err := request.SignURL(s.Proxy.Controls, s.Proxy.StripPath, s.Proxy.MaxBox, u)
		if err != nil {
			fmt.Fprintln(stderr, "image-proxy sign:", err)
			return 2
		}
		fmt.Fprintln(stdout, signed)
	}
	return 0
}
