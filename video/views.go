package video

import "fmt"

// Multi-view testing (mmaction2's and the TSM paper's "dense" accuracy):
// Config.NumClips clips of SegNum segments per video, each cropped at
// Config.NumCrops positions, outside Train. A sample then holds the
// NumClips*NumCrops views one after the other (clip-major), each laid out
// as a one-view sample; the model averages their probabilities.

// MaxClips caps num_clips: the papers' dense testing takes 10; each clip
// is a whole sample in memory.
const MaxClips = 32

// Views is the number of views per video: NumClips*NumCrops outside
// Train, else 1 (0 counts as 1).
func (c *Config) Views() int {
	if c.Mode == Train {
		return 1
	}
	return max(c.NumClips, 1) * max(c.NumCrops, 1)
}

// MultiClipIndices returns the frame indices of numClips evaluation clips
// of a video of n frames, clip after clip. With avg = n/segNum (floor),
// segment i of clip k starts at
//
//	i*avg + (k*avg)/numClips + ((avg/numClips) - 1)/2   (floor divisions)
//
// which for one clip is Paddle's (avg-1)/2 + i*avg; Paddle's rules for
// short videos (avg < segLen: i*avg; avg == 0: i) hold for every clip, and
// indices wrap modulo n. The clips are spread evenly over each segment, as
// mmaction2's SampleFrames(test_mode, num_clips) spreads them over the
// video.
func MultiClipIndices(n, segNum, segLen, numClips int) []int {
	if n <= 0 || segNum <= 0 || segLen <= 0 || numClips <= 0 {
		panic(fmt.Sprintf("video: sample %d frames into %d clips of %d segments of %d", n, numClips, segNum, segLen))
	}
	avg := n / segNum
	idx := make([]int, 0, numClips*segNum*segLen)
	for k := range numClips {
		for i := range segNum {
			var start int
			switch {
			case avg >= segLen:
				start = i*avg + floorDiv(k*avg, numClips) + floorDiv(floorDiv(avg, numClips)-1, 2)
			case avg >= 1:
				start = i * avg
			default:
				start = i
			}
			for j := start; j < start+segLen; j++ {
				idx = append(idx, ((j%n)+n)%n)
			}
		}
	}
	return idx
}

// floorDiv is Python's //.
func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// CropOffsets are the top-left corners of numCrops windows of size on a
// w x h frame: one, the centre (Paddle's group_center_crop); three, the
// start, centre and end of the long side, centred on the short side
// (mmaction2's ThreeCrop, whose end window starts at 2*((long-size)/2),
// one pixel before ours when long-size is odd).
func CropOffsets(w, h, size, numCrops int) ([][2]int, error) {
	if w < size || h < size {
		return nil, fmt.Errorf("crop %d from a %dx%d frame: frame smaller than crop", size, w, h)
	}
	cx, cy := CenterOffset(w, size), CenterOffset(h, size)
	switch numCrops {
	case 0, 1:
		return [][2]int{{cx, cy}}, nil
	case 3:
		if w >= h {
			return [][2]int{{0, cy}, {cx, cy}, {w - size, cy}}, nil
		}
		return [][2]int{{cx, 0}, {cx, cy}, {cx, h - size}}, nil
	}
	return nil, fmt.Errorf("num_crops %d: must be 1 or 3", numCrops)
}

// multiView transforms the frames of NumClips clips (clip after clip)
// into their views: group_scale, then each clip cropped at each offset.
func (r *Reader) multiView(frames []*Image) ([]float32, error) {
	c := &r.cfg
	frames = GroupScale(frames, c.ShortSize)
	for _, f := range frames[1:] {
		if f.W != frames[0].W || f.H != frames[0].H {
			return nil, fmt.Errorf("frames of different sizes (%dx%d and %dx%d)", frames[0].W, frames[0].H, f.W, f.H)
		}
	}
	offs, err := CropOffsets(frames[0].W, frames[0].H, c.TargetSize, c.NumCrops)
	if err != nil {
		return nil, err
	}
	data := r.clipBuf()
	per := c.SegNum * c.SegLen
	view := per * 3 * c.TargetSize * c.TargetSize
	v := 0
	for k := range max(c.NumClips, 1) {
		for _, o := range offs {
			crop, err := cropAll(frames[k*per:(k+1)*per], o[0], o[1], c.TargetSize)
			if err != nil {
				return nil, err
			}
			Normalize(data[v*view:(v+1)*view], crop, c.Mean, c.Std, false)
			v++
		}
	}
	return data, nil
}
