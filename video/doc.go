// Package video is zoo's video reader: list files, FFmpeg decoding, and the
// frame sampling and augmentation of PaddlePaddle's fluid video zoo
// (PaddleCV/video/reader/kinetics_reader.py), reproduced exactly so that
// published TSM weights see the inputs they were trained and evaluated on.
//
// Plugins import it (plugins/tsm) to turn a list of videos into batches of
// float32 tensors laid out [N, seg_num, 3*seglen, H, W]. It imports only the
// standard library and runs the ffmpeg executable over pipes, one process
// per video.
//
// Frame counts come from decoding, so a clip's frames are only known once
// ffmpeg reaches the end of the file. Outside Train two shortcuts keep
// ffmpeg from converting and piping frames the clip does not use (the
// reader's cost over ffmpeg alone is mostly that pipe): an MP4's packet
// count guesses the frame count and a select filter keeps only the frames
// the centre rule picks for counts near the guess, the true count,
// counted on the side, deciding (a miss decodes again in full); and where
// group_scale would leave the frames unchanged, ffmpeg does the center crop.
// Both are checked against the plain path in the tests.
//
// What is matched, and how closely:
//
//   - Frames: every decoded frame counts once (ffmpeg -vsync passthrough), in
//     RGB as ffmpeg's swscale produces it, rotation metadata applied. Paddle
//     read frames through OpenCV, which also converts with swscale.
//   - Sampling: mp4_loader's rules bit for bit (SampleIndices), and
//     video_loader's slightly different centre rule for pkl lists
//     (SampleIndicesPKL).
//   - Resizing: Pillow's Image.resize(size, Image.BILINEAR) bit for bit:
//     the separable convolution of libImaging/Resample.c with the support
//     widened when downscaling (antialiasing), 22-bit fixed-point
//     coefficients and an 8-bit intermediate image (ResizeBilinear).
//   - Crops: Pillow's crop rounds float boxes with Python 3's round(), half
//     to even; multi-scale crop offsets are floats under Python 3, so a crop
//     can come out one pixel wider than asked, exactly as in Paddle.
//   - Randomness: the same distributions as Paddle (randint inclusive,
//     random.choice, random() < 0.5) drawn from a *rand.Rand seeded by
//     (seed, epoch, item index), so runs repeat exactly whatever the number
//     of workers. Python's global Mersenne Twister state is not reproduced.
//   - JPEG frames of pkl lists are decoded with image/jpeg: luma matches
//     libjpeg's (Pillow) within rounding, but image/jpeg replicates chroma
//     where libjpeg interpolates it, so colours differ at sharp chroma
//     edges (by tens of levels on synthetic frames; see TestReadPKL).
package video
