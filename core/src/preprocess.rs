//! Image preprocessing: decode a PNG or JPEG, crop a box, area-resize and normalise it to the NCHW `f32`
//! tensor a model reads.
//!
//! The `image` crate only decodes; cropping, resizing and normalisation are Veil's own code so that they
//! follow one written specification, which `scripts/gen_sample_expectations.py` implements as well:
//!
//! 1. decode to RGB8, dropping any alpha channel without compositing (like Pillow's `convert("RGB")`);
//!    greyscale is expanded to three equal channels and EXIF orientation is not applied;
//! 2. crop a [`Crop`] box, right and bottom exclusive;
//! 3. resize the crop (`cw`×`ch`) to `W`×`H` by area averaging, separably and in `f64`: with `s = cw / W`,
//!    output column `o` covers the source interval `[o·s, (o+1)·s)` and source column `x` weighs
//!    `|[x, x+1) ∩ [o·s, (o+1)·s)| / s` (rows likewise with `ch / H`);
//! 4. normalise `(v − mean[c]) · scale` in `f64`, cast to `f32`, in the [`ChannelOrder`] the model wants.
//!
//! Decoding refuses hostile input before it allocates the pixel buffer: files over [`MAX_FILE_BYTES`] and
//! images over [`MAX_SIDE`] pixels a side or [`MAX_PIXELS`] pixels in all.

use std::fs::File;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use image::{ImageDecoder, ImageFormat, ImageReader, Limits};

pub use crate::manifest::ChannelOrder;
use crate::tensor::Tensor;

/// The largest image file (or byte buffer) [`load_image`] and [`decode_image`] accept: 64 MiB.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// The largest width or height, in pixels, of an image that is decoded.
pub const MAX_SIDE: u32 = 8192;
/// The largest pixel count (40 megapixels) of an image that is decoded.
pub const MAX_PIXELS: u64 = 40_000_000;
/// The largest width or height of a preprocessed tensor.
pub const MAX_OUTPUT_SIDE: usize = 4096;

/// What the decoder may allocate in all: the largest allowed image at 8 bytes a pixel (RGBA16), plus slack
/// for the decoders' own tables. A second line of defence behind the dimension check.
const MAX_DECODE_ALLOC: u64 = MAX_PIXELS * 8 + 64 * 1024 * 1024;

/// Errors of image decoding and preprocessing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The image file could not be read.
    #[error("cannot read image {path:?}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file or buffer is larger than [`MAX_FILE_BYTES`].
    #[error("image file of {bytes} bytes is over the limit of {max} bytes")]
    FileTooLarge {
        /// Its size in bytes.
        bytes: u64,
        /// The limit.
        max: u64,
    },
    /// The bytes are not a PNG or JPEG image that decodes (corrupt, truncated or another format).
    #[error("cannot decode image (PNG or JPEG expected): {detail}")]
    Decode {
        /// What the decoder reported.
        detail: String,
    },
    /// The image header declares dimensions over [`MAX_SIDE`] or [`MAX_PIXELS`].
    #[error("image of {width}x{height} pixels is over the limit of {max_side} pixels a side and {max_pixels} pixels")]
    TooLarge {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// The limit on either side.
        max_side: u32,
        /// The limit on the pixel count.
        max_pixels: u64,
    },
    /// The crop box `[left, top, right, bottom)` extends outside the image.
    #[error("crop box {crop:?} (left, top, right, bottom) extends outside the {width}x{height} image")]
    CropOutOfBounds {
        /// The box as `[left, top, right, bottom]`.
        crop: [u32; 4],
        /// Image width.
        width: u32,
        /// Image height.
        height: u32,
    },
    /// The crop box `[left, top, right, bottom)` holds no pixel.
    #[error("crop box {crop:?} (left, top, right, bottom) of the {width}x{height} image is empty")]
    EmptyCrop {
        /// The box as `[left, top, right, bottom]`.
        crop: [u32; 4],
        /// Image width.
        width: u32,
        /// Image height.
        height: u32,
    },
    /// The requested output size is zero or over [`MAX_OUTPUT_SIDE`] on a side.
    #[error("output size {width}x{height} is not between 1 and {max} on each side")]
    InvalidOutputSize {
        /// Requested width.
        width: usize,
        /// Requested height.
        height: usize,
        /// The limit on either side.
        max: usize,
    },
    /// A pixel buffer's length does not match its dimensions.
    #[error("pixel buffer of {actual} bytes does not match a {width}x{height} RGB8 image ({expected} bytes)")]
    BufferSize {
        /// Image width.
        width: u32,
        /// Image height.
        height: u32,
        /// Bytes the dimensions need.
        expected: u64,
        /// Bytes supplied.
        actual: usize,
    },
}

/// A decoded image: 8-bit RGB, row-major, three bytes a pixel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbImage {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

impl RgbImage {
    /// Wraps an RGB8 row-major buffer, checking that it holds exactly `width * height * 3` bytes.
    pub fn new(width: u32, height: u32, pixels: Vec<u8>) -> Result<Self, ImageError> {
        let expected = u64::from(width) * u64::from(height) * 3;
        if u64::try_from(pixels.len()).ok() != Some(expected) {
            return Err(ImageError::BufferSize { width, height, expected, actual: pixels.len() });
        }
        Ok(Self { width, height, pixels })
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The pixels: rows top to bottom, each pixel as R, G, B bytes.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// Consumes the image, returning its pixel buffer.
    pub fn into_pixels(self) -> Vec<u8> {
        self.pixels
    }

    /// The RGB value at column `x`, row `y`, or `None` outside the image.
    pub fn pixel(&self, x: u32, y: u32) -> Option<[u8; 3]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let at = (y as usize * self.width as usize + x as usize) * 3;
        Some([self.pixels[at], self.pixels[at + 1], self.pixels[at + 2]])
    }
}

/// Reads and decodes a PNG or JPEG file; see [`decode_image`].
pub fn load_image(path: &Path) -> Result<RgbImage, ImageError> {
    let io_err = |source| ImageError::Io { path: path.to_path_buf(), source };
    let file = File::open(path).map_err(io_err)?;
    let declared = file.metadata().map_err(io_err)?.len();
    if declared > MAX_FILE_BYTES {
        return Err(ImageError::FileTooLarge { bytes: declared, max: MAX_FILE_BYTES });
    }
    // Read at most one byte past the limit, in case the file grew after the size check.
    let mut bytes = Vec::with_capacity(usize::try_from(declared).unwrap_or(0));
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(io_err)?;
    decode_image(&bytes)
}

/// Decodes a PNG or JPEG (the format is guessed from the content) to RGB8.
///
/// Alpha is dropped without compositing and greyscale is expanded to three channels. Buffers over
/// [`MAX_FILE_BYTES`] and images whose header declares more than [`MAX_SIDE`] pixels a side or
/// [`MAX_PIXELS`] pixels are refused before the pixel buffer is allocated.
pub fn decode_image(bytes: &[u8]) -> Result<RgbImage, ImageError> {
    let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if len > MAX_FILE_BYTES {
        return Err(ImageError::FileTooLarge { bytes: len, max: MAX_FILE_BYTES });
    }
    let mut reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(decode_error)?;
    match reader.format() {
        Some(ImageFormat::Png | ImageFormat::Jpeg) => {}
        other => {
            let detail = match other {
                Some(format) => format!("unsupported format {format:?}"),
                None => "unrecognised format".to_string(),
            };
            return Err(ImageError::Decode { detail });
        }
    }
    // No strict width/height limits here: the PNG decoder would then fail before we could read the
    // dimensions, and `TooLarge` should name them. The allocation cap stays as a backstop.
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    reader.limits(limits);
    let decoder = reader.into_decoder().map_err(decode_error)?;
    let (width, height) = decoder.dimensions();
    check_dimensions(width, height)?;
    let decoded = image::DynamicImage::from_decoder(decoder).map_err(decode_error)?;
    RgbImage::new(width, height, decoded.into_rgb8().into_raw())
}

fn decode_error(err: impl std::fmt::Display) -> ImageError {
    ImageError::Decode { detail: err.to_string() }
}

fn check_dimensions(width: u32, height: u32) -> Result<(), ImageError> {
    let pixels = u64::from(width) * u64::from(height);
    if width > MAX_SIDE || height > MAX_SIDE || pixels > MAX_PIXELS {
        return Err(ImageError::TooLarge { width, height, max_side: MAX_SIDE, max_pixels: MAX_PIXELS });
    }
    Ok(())
}

/// The region of an image that is resized to the model's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crop {
    /// The largest centred square: `side = min(w, h)`, `left = (w − side) / 2`, `top = (h − side) / 2`
    /// (integer division).
    CenterSquare,
    /// An explicit box; `right` and `bottom` are exclusive.
    Box {
        /// First column.
        left: u32,
        /// First row.
        top: u32,
        /// One past the last column.
        right: u32,
        /// One past the last row.
        bottom: u32,
    },
}

impl Crop {
    /// The box `[left, top, right, bottom]` this crop selects in a `width`×`height` image, checked to be
    /// non-empty and inside the image.
    pub fn resolve(&self, width: u32, height: u32) -> Result<[u32; 4], ImageError> {
        let crop = match *self {
            Crop::CenterSquare => {
                let side = width.min(height);
                let (left, top) = ((width - side) / 2, (height - side) / 2);
                [left, top, left + side, top + side]
            }
            Crop::Box { left, top, right, bottom } => [left, top, right, bottom],
        };
        let [left, top, right, bottom] = crop;
        if right <= left || bottom <= top {
            return Err(ImageError::EmptyCrop { crop, width, height });
        }
        if right > width || bottom > height {
            return Err(ImageError::CropOutOfBounds { crop, width, height });
        }
        Ok(crop)
    }
}

/// How a crop becomes a model input: the output size, channel order and per-channel affine map.
#[derive(Clone, Debug, PartialEq)]
pub struct Normalization {
    /// Output width `W`.
    pub width: usize,
    /// Output height `H`.
    pub height: usize,
    /// The order of the three output channels.
    pub channel_order: ChannelOrder,
    /// The mean subtracted from output channel `i` (in `channel_order`, not necessarily RGB).
    pub means: [f32; 3],
    /// The factor applied after subtracting the mean.
    pub scale: f32,
}

/// Crops, area-resizes and normalises `image` to a `[1, 3, H, W]` tensor (see the module documentation for
/// the exact specification).
pub fn preprocess(image: &RgbImage, crop: &Crop, norm: &Normalization) -> Result<Tensor<f32>, ImageError> {
    let (out_w, out_h) = (norm.width, norm.height);
    if !(1..=MAX_OUTPUT_SIDE).contains(&out_w) || !(1..=MAX_OUTPUT_SIDE).contains(&out_h) {
        return Err(ImageError::InvalidOutputSize { width: out_w, height: out_h, max: MAX_OUTPUT_SIDE });
    }
    let [left, top, right, bottom] = crop.resolve(image.width, image.height)?;
    let region = Region {
        left: left as usize,
        top: top as usize,
        width: (right - left) as usize,
        height: (bottom - top) as usize,
    };
    let columns = area_weights(region.width, out_w);
    let rows = area_weights(region.height, out_h);
    let horizontal = resize_rows(image, &region, &columns);
    let mut out = Tensor::full(vec![1, 3, out_h, out_w], 0.0f32);
    let plane = out_h * out_w;
    let data = out.data_mut();
    for (y, taps) in rows.iter().enumerate() {
        for x in 0..out_w {
            let mut acc = [0.0f64; 3];
            for &(row, weight) in taps {
                let at = (row * out_w + x) * 3;
                for (c, slot) in acc.iter_mut().enumerate() {
                    *slot += weight * horizontal[at + c];
                }
            }
            for channel in 0..3 {
                let rgb = match norm.channel_order {
                    ChannelOrder::Rgb => channel,
                    ChannelOrder::Bgr => 2 - channel,
                };
                let value = (acc[rgb] - f64::from(norm.means[channel])) * f64::from(norm.scale);
                data[channel * plane + y * out_w + x] = value as f32;
            }
        }
    }
    Ok(out)
}

/// A validated crop box in pixel coordinates.
struct Region {
    left: usize,
    top: usize,
    width: usize,
    height: usize,
}

/// For each of `dst` outputs, the `(source index, weight)` pairs that average `src` inputs over it.
fn area_weights(src: usize, dst: usize) -> Vec<Vec<(usize, f64)>> {
    let s = src as f64 / dst as f64;
    (0..dst)
        .map(|o| {
            let (lo, hi) = (o as f64 * s, (o + 1) as f64 * s);
            let end = (hi.ceil() as usize).min(src);
            (lo.floor() as usize..end)
                .filter_map(|x| {
                    let overlap = (x as f64 + 1.0).min(hi) - (x as f64).max(lo);
                    (overlap > 0.0).then_some((x, overlap / s))
                })
                .collect()
        })
        .collect()
}

/// The horizontal pass: every row of the region resized to `columns.len()` pixels, interleaved RGB `f64`.
fn resize_rows(image: &RgbImage, region: &Region, columns: &[Vec<(usize, f64)>]) -> Vec<f64> {
    let out_w = columns.len();
    let stride = image.width as usize * 3;
    let mut out = vec![0.0f64; region.height * out_w * 3];
    for r in 0..region.height {
        let start = (region.top + r) * stride + region.left * 3;
        let row = &image.pixels[start..start + region.width * 3];
        for (o, taps) in columns.iter().enumerate() {
            let at = (r * out_w + o) * 3;
            for &(x, weight) in taps {
                for c in 0..3 {
                    out[at + c] += weight * f64::from(row[x * 3 + c]);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ExtendedColorType, ImageEncoder};

    fn identity(width: usize, height: usize) -> Normalization {
        Normalization { width, height, channel_order: ChannelOrder::Rgb, means: [0.0; 3], scale: 1.0 }
    }

    /// A `width`×`height` image whose bytes follow a fixed pseudo-random sequence.
    fn patterned(width: u32, height: u32) -> RgbImage {
        let mut state = 0x2545_f491u32;
        let pixels = (0..width * height * 3)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state >> 24) as u8
            })
            .collect();
        RgbImage::new(width, height, pixels).unwrap()
    }

    fn encode_png(width: u32, height: u32, pixels: &[u8], color: ExtendedColorType) -> Vec<u8> {
        let mut bytes = Vec::new();
        image::codecs::png::PngEncoder::new(&mut bytes).write_image(pixels, width, height, color).unwrap();
        bytes
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    /// A valid small PNG whose IHDR (and its CRC) is patched to declare `width`×`height`.
    fn png_claiming(width: u32, height: u32) -> Vec<u8> {
        let mut bytes = encode_png(1, 1, &[1, 2, 3], ExtendedColorType::Rgb8);
        assert_eq!(&bytes[12..16], b"IHDR");
        bytes[16..20].copy_from_slice(&width.to_be_bytes());
        bytes[20..24].copy_from_slice(&height.to_be_bytes());
        let crc = crc32(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        bytes
    }

    #[test]
    fn resizing_a_constant_image_gives_the_constant() {
        let image = RgbImage::new(7, 5, [100u8, 50, 200].repeat(35)).unwrap();
        for (w, h) in [(3, 2), (64, 64), (5, 5), (1, 1)] {
            let out = preprocess(&image, &Crop::CenterSquare, &identity(w, h)).unwrap();
            assert_eq!(out.shape(), &[1, 3, h, w]);
            for (i, &v) in out.data().iter().enumerate() {
                let want = [100.0, 50.0, 200.0][i / (w * h)];
                assert!((v - want).abs() < 1e-4, "{w}x{h} element {i}: {v} != {want}");
            }
        }
    }

    #[test]
    fn halving_equals_two_by_two_block_means_exactly() {
        let image = patterned(8, 6);
        let out = preprocess(&image, &Crop::Box { left: 0, top: 0, right: 8, bottom: 6 }, &identity(4, 3)).unwrap();
        for c in 0..3 {
            for y in 0..3u32 {
                for x in 0..4u32 {
                    let sum: f64 = [(0, 0), (1, 0), (0, 1), (1, 1)]
                        .iter()
                        .map(|&(dx, dy)| f64::from(image.pixel(2 * x + dx, 2 * y + dy).unwrap()[c]))
                        .sum();
                    let got = out.data()[c * 12 + y as usize * 4 + x as usize];
                    assert_eq!(got, (sum / 4.0) as f32, "channel {c} at ({x}, {y})");
                }
            }
        }
    }

    #[test]
    fn normalisation_and_channel_order() {
        let image = RgbImage::new(1, 1, vec![10, 20, 30]).unwrap();
        let norm =
            Normalization { width: 1, height: 1, channel_order: ChannelOrder::Bgr, means: [1.0, 2.0, 3.0], scale: 0.5 };
        let out = preprocess(&image, &Crop::CenterSquare, &norm).unwrap();
        assert_eq!(out.data(), &[14.5, 9.0, 3.5]);
    }

    #[test]
    fn centre_square_and_crop_validation() {
        assert_eq!(Crop::CenterSquare.resolve(7, 5).unwrap(), [1, 0, 6, 5]);
        assert_eq!(Crop::CenterSquare.resolve(4, 9).unwrap(), [0, 2, 4, 6]);
        let boxed = |left, top, right, bottom| Crop::Box { left, top, right, bottom };
        assert!(matches!(
            boxed(2, 0, 8, 5).resolve(7, 5),
            Err(ImageError::CropOutOfBounds { crop: [2, 0, 8, 5], width: 7, height: 5 })
        ));
        assert!(matches!(boxed(0, 1, 3, 6).resolve(7, 5), Err(ImageError::CropOutOfBounds { .. })));
        assert!(matches!(
            boxed(3, 1, 3, 4).resolve(7, 5),
            Err(ImageError::EmptyCrop { crop: [3, 1, 3, 4], width: 7, height: 5 })
        ));
        assert!(matches!(boxed(4, 1, 3, 4).resolve(7, 5), Err(ImageError::EmptyCrop { .. })));
        assert!(matches!(Crop::CenterSquare.resolve(0, 5), Err(ImageError::EmptyCrop { .. })));
        let image = patterned(4, 4);
        let err = preprocess(&image, &boxed(0, 0, 5, 4), &identity(2, 2)).unwrap_err();
        assert!(matches!(err, ImageError::CropOutOfBounds { .. }));
        let err = preprocess(&image, &Crop::CenterSquare, &identity(0, 2)).unwrap_err();
        assert!(matches!(err, ImageError::InvalidOutputSize { width: 0, height: 2, .. }));
    }

    #[test]
    fn decodes_png_dropping_alpha_and_expanding_grey() {
        let rgba = [10, 20, 30, 0, 40, 50, 60, 255];
        let image = decode_image(&encode_png(2, 1, &rgba, ExtendedColorType::Rgba8)).unwrap();
        assert_eq!((image.width(), image.height()), (2, 1));
        assert_eq!(image.pixels(), &[10, 20, 30, 40, 50, 60]);
        let grey = decode_image(&encode_png(1, 2, &[7, 9], ExtendedColorType::L8)).unwrap();
        assert_eq!(grey.pixels(), &[7, 7, 7, 9, 9, 9]);
    }

    #[test]
    fn corrupt_input_is_a_decode_error() {
        let png = encode_png(8, 8, patterned(8, 8).pixels(), ExtendedColorType::Rgb8);
        for cut in [png.len() / 2, png.len() - 13, 20] {
            let err = decode_image(&png[..cut]).unwrap_err();
            assert!(matches!(err, ImageError::Decode { .. }), "cut at {cut}: {err}");
        }
        let noise = patterned(32, 32).into_pixels();
        assert!(matches!(decode_image(&noise), Err(ImageError::Decode { .. })));
        assert!(matches!(decode_image(&[]), Err(ImageError::Decode { .. })));
        assert!(matches!(decode_image(b"GIF89a\x01\x00\x01\x00"), Err(ImageError::Decode { .. })));
    }

    #[test]
    fn oversized_headers_are_refused_before_decoding() {
        let err = decode_image(&png_claiming(100_000, 100_000)).unwrap_err();
        assert!(matches!(err, ImageError::TooLarge { width: 100_000, height: 100_000, max_side: 8192, .. }), "{err}");
        // Each side within the limit, the pixel count over it.
        assert!(matches!(decode_image(&png_claiming(8000, 8000)), Err(ImageError::TooLarge { .. })));
        assert!(matches!(decode_image(&png_claiming(9000, 1)), Err(ImageError::TooLarge { .. })));

        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut jpeg)
            .write_image(patterned(8, 8).pixels(), 8, 8, ExtendedColorType::Rgb8)
            .unwrap();
        let sof = jpeg.windows(2).position(|w| w == [0xff, 0xc0]).unwrap();
        jpeg[sof + 5..sof + 7].copy_from_slice(&60_000u16.to_be_bytes());
        jpeg[sof + 7..sof + 9].copy_from_slice(&50_000u16.to_be_bytes());
        let err = decode_image(&jpeg).unwrap_err();
        assert!(matches!(err, ImageError::TooLarge { width: 50_000, height: 60_000, .. }), "{err}");
    }

    #[test]
    fn oversized_buffers_and_missing_files() {
        let big = vec![0u8; MAX_FILE_BYTES as usize + 1];
        assert!(matches!(decode_image(&big), Err(ImageError::FileTooLarge { .. })));
        let err = load_image(Path::new("/nonexistent/veil/image.png")).unwrap_err();
        assert!(matches!(err, ImageError::Io { .. }));
        assert!(matches!(RgbImage::new(2, 2, vec![0; 11]), Err(ImageError::BufferSize { expected: 12, .. })));
    }
}
