// Command ceiling is the benchmark yardstick for cache hits: a bare Fiber
// handler returning fixed bytes from memory, with the same server settings
// image-proxy uses. Usage: ceiling ADDR FILE CONTENT-TYPE
package main

import (
	"log"
	"os"

	"github.com/gofiber/fiber/v2"
)

func main() {
	if len(os.Args) != 4 {
		log.Fatal("usage: ceiling ADDR FILE CONTENT-TYPE")
	}
	body, err := os.ReadFile(os.Args[2])
	if err != nil {
		log.Fatal(err)
	}
	ctype := os.Args[3]
	app := fiber.New(fiber.Config{DisableStartupMessage: true, Network: "tcp"})
	app.Get("/*", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, ctype)
		return c.Send(body)
	})
	log.Fatal(app.Listen(os.Args[1]))
}
