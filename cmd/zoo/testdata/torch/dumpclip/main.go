// Command dumpclip writes zoo's infer-mode input of videos (Paddle's
// sampling, group_scale 256, centre crop 224, normalised) as raw float32,
// for gen.py to feed PyTorch. It runs at golden-generation time only:
//
//	go run ./cmd/zoo/testdata/torch/dumpclip [-clips K -crops C] OUT.f32 VIDEO...
//
// With -clips or -crops each video's K*C views follow one another
// (video/views.go).
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"os"

	"github.com/zoo-ml/zoo/video"
)

var clips, crops = flag.Int("clips", 1, "num_clips"), flag.Int("crops", 1, "num_crops")

func main() {
	flag.Parse()
	if err := run(flag.Arg(0), flag.Args()[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "dumpclip:", err)
		os.Exit(1)
	}
}

func run(out string, videos []string) error {
	var items []video.Item
	for _, v := range videos {
		items = append(items, video.Item{Path: v, Label: video.NoLabel, Where: v})
	}
	r, err := video.NewReader(video.Config{Mode: video.Infer, SegNum: 8, SegLen: 1, ShortSize: 256, TargetSize: 224,
		Mean: [3]float32{0.485, 0.456, 0.406}, Std: [3]float32{0.229, 0.224, 0.225}, BatchSize: 1,
		NumClips: *clips, NumCrops: *crops}, items)
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	for i := range items {
		s, err := r.Load(context.Background(), i, 0)
		if err != nil {
			return err
		}
		if err := binary.Write(f, binary.LittleEndian, s.Data); err != nil {
			return err
		}
	}
	return f.Close()
}
