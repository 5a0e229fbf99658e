// Command s3put makes a bucket (if missing) and uploads one file into it,
// for the benchmarks that serve originals from a MinIO on loopback.
//
//	s3put ENDPOINT ACCESS-KEY SECRET-KEY BUCKET KEY FILE
package main

import (
	"context"
	"log"
	"net/url"
	"os"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func main() {
	if len(os.Args) != 7 {
		log.Fatal("usage: s3put ENDPOINT ACCESS-KEY SECRET-KEY BUCKET KEY FILE")
	}
	endpoint, access, secret, bucket, key, file := os.Args[1], os.Args[2], os.Args[3], os.Args[4], os.Args[5], os.Args[6]
	u, err := url.Parse(endpoint)
	if err != nil {
		log.Fatal(err)
	}
	c, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(access, secret, ""), Secure: u.Scheme == "https",
		Region: "us-east-1", BucketLookup: minio.BucketLookupPath})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if ok, err := c.BucketExists(ctx, bucket); err != nil {
		log.Fatal(err)
	} else if !ok {
		if err := c.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
			log.Fatal(err)
		}
	}
	if _, err := c.FPutObject(ctx, bucket, key, file, minio.PutObjectOptions{}); err != nil {
		log.Fatal(err)
	}
}
