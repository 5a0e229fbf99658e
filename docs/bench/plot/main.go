// Command plot draws the benchmark and soak charts from CSV files.
//
//	plot xy  OUT.png TITLE XLABEL YLABEL data.csv   (columns: x,y)
//	plot soak OUT.png data.csv                      (columns: seconds,rss,heap,libvips in bytes)
package main

import (
	"encoding/csv"
	"log"
	"os"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

func main() {
	if len(os.Args) < 4 {
		log.Fatal("usage: plot xy OUT TITLE XLABEL YLABEL CSV | plot soak OUT CSV")
	}
	switch os.Args[1] {
	case "xy":
		rows := read(os.Args[6])
		p := plot.New()
		p.Title.Text, p.X.Label.Text, p.Y.Label.Text = os.Args[3], os.Args[4], os.Args[5]
		pts := make(plotter.XYs, len(rows))
		for i, r := range rows {
			pts[i].X, pts[i].Y = r[0], r[1]
		}
		if err := plotutil.AddLinePoints(p, "", pts); err != nil {
			log.Fatal(err)
		}
		p.Legend.Top = true
		save(p, os.Args[2])
	case "soak":
		rows := read(os.Args[3])
		p := plot.New()
		p.Title.Text, p.X.Label.Text, p.Y.Label.Text = "Memory under mixed load", "seconds", "MB"
		series := []string{"RSS", "Go heap in use", "libvips tracked"}
		var lines []any
		for s, name := range series {
			pts := make(plotter.XYs, len(rows))
			for i, r := range rows {
				pts[i].X, pts[i].Y = r[0], r[s+1]/1e6
			}
			lines = append(lines, name, pts)
		}
		if err := plotutil.AddLines(p, lines...); err != nil {
			log.Fatal(err)
		}
		p.Legend.Top = true
		p.Y.Min = 0
		save(p, os.Args[2])
	default:
		log.Fatalf("unknown mode %q", os.Args[1])
	}
}

func read(path string) [][]float64 {
	f, err := os.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		log.Fatal(err)
	}
	var rows [][]float64
	for _, rec := range recs {
		row := make([]float64, len(rec))
		ok := true
		for i, v := range rec {
			if row[i], err = strconv.ParseFloat(v, 64); err != nil {
				ok = false // header line
			}
		}
		if ok {
			rows = append(rows, row)
		}
	}
	return rows
}

func save(p *plot.Plot, out string) {
	if err := p.Save(7*vg.Inch, 4*vg.Inch, out); err != nil {
		log.Fatal(err)
	}
}
