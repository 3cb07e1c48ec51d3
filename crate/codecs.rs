//! Arrays, images and tables as bytes: float32 .npy in and out, 8-bit PNGs out, CSV in and out. The caller decides where
//! bytes come from and go (a file natively, a download or upload in the page).

use std::io::Cursor;

use crate::{Error, Result};

/// A tensor's values in f32, row-major (integer tensors' values as floats): what the GPU kernels,
/// the page and the files take.
pub fn f32_values(t: &candle_core::Tensor) -> Result<Vec<f32>> {
    Ok(t.to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?)
}

/// Lower-case hex of a digest, as records state MD5s and runs SHA-256s.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Largest array read: 2^26 values (256 MiB of f32), a bound against headers that claim more.
pub const MAX_ELEMENTS: usize = crate::spec::limits::ARRAY_VALUES.max as usize;

/// An n-dimensional .npy of float32 or float64 (C or Fortran order) as shape and f32 values in C
/// order; `name` labels errors.
pub fn read_npy(bytes: &[u8], name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
    let err = |e: &dyn std::fmt::Display| Error::decode(name, format!(".npy: {e}"));
    // npyz allocates the header's stated length up front: check it against the bytes we have
    // (a fuzzed header claimed 2.6 GB)
    let header_len = match bytes.get(6) {
        Some(1) => bytes
            .get(8..10)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize + 10),
        Some(2 | 3) => bytes
            .get(8..12)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize + 12),
        _ => None,
    };
    if header_len.is_none_or(|n| n > bytes.len()) {
        return Err(err(
            &"the header is cut off or claims more bytes than the file has",
        ));
    }
    let npy = npyz::NpyFile::new(Cursor::new(bytes)).map_err(|e| err(&e))?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let count = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    if count.is_none_or(|n| n > MAX_ELEMENTS) {
        return Err(err(&format!(
            "shape {shape:?} is larger than the {MAX_ELEMENTS} values the lab reads"
        )));
    }
    let fortran = npy.order() == npyz::Order::Fortran;
    let descr = npy.dtype().descr().trim_matches('\'').to_string();
    let values: Vec<f32> = if descr.ends_with("f4") {
        npy.into_vec::<f32>().map_err(|e| err(&e))?
    } else if descr.ends_with("f8") {
        let v = npy.into_vec::<f64>().map_err(|e| err(&e))?;
        v.into_iter().map(|v| v as f32).collect()
    } else {
        return Err(err(&format!(
            "dtype {descr} is not supported (use float32 or float64)"
        )));
    };
    if values.len() != shape.iter().product::<usize>() {
        return Err(err(
            &"the data is shorter than the header says (truncated file?)",
        ));
    }
    if !fortran || shape.len() < 2 {
        return Ok((shape, values));
    }
    // Fortran order: the first index varies fastest; reorder to C order
    let n = values.len();
    let mut c_order = vec![0f32; n];
    for (f_index, v) in values.into_iter().enumerate() {
        let (mut rest, mut c_index, mut stride) = (f_index, 0, 1);
        let mut strides = vec![0; shape.len()];
        for d in (0..shape.len()).rev() {
            strides[d] = stride;
            stride *= shape[d];
        }
        for (d, &len) in shape.iter().enumerate() {
            c_index += (rest % len) * strides[d];
            rest /= len;
        }
        c_order[c_index] = v;
    }
    Ok((shape, c_order))
}

/// A C-order float32 .npy of the given shape, in memory.
pub fn npy_f32(shape: &[usize], data: &[f32]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() * 4 + 128);
    // writing into memory cannot fail as I/O: the name never shows
    write_npy_f32(&mut out, shape, data, "a .npy in memory")?;
    Ok(out)
}

/// Writes a C-order float32 .npy of the given shape to `out` (`name` in errors): npyz writes the
/// header, the values follow in little-endian blocks (npyz's writer takes them one by one: a
/// quarter of `views --all`'s time), so a file needs no copy of the whole array in memory.
pub fn write_npy_f32(
    out: &mut impl std::io::Write,
    shape: &[usize],
    data: &[f32],
    name: &str,
) -> Result<()> {
    use npyz::WriterBuilder;
    let expected: usize = shape.iter().product();
    if expected != data.len() {
        return Err(Error::invalid(format!(
            "shape {shape:?} needs {expected} values, got {}",
            data.len()
        )));
    }
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let failed = |e| Error::io(format!("cannot write {name}"), e);
    npyz::WriteOptions::new_header_only()
        .dtype(<f32 as npyz::AutoSerialize>::default_dtype())
        .shape(&shape)
        .writer(&mut *out)
        .write_header_only()
        .map_err(failed)?;
    const BLOCK: usize = 16 * 1024;
    let mut bytes = Vec::with_capacity(BLOCK * 4);
    for block in data.chunks(BLOCK) {
        bytes.clear();
        bytes.extend(block.iter().flat_map(|v| v.to_le_bytes()));
        out.write_all(&bytes).map_err(failed)?;
    }
    Ok(())
}

/// A value in [0, 1] as 8 bits, clipped and rounded as a PNG or JPEG stores it.
pub fn to_byte(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// An 8-bit PNG of interleaved pixels with `channels` per pixel (3: RGB, 4: RGBA).
pub fn png8(width: usize, height: usize, channels: usize, pixels: &[u8]) -> Result<Vec<u8>> {
    let colour = match channels {
        1 => png::ColorType::Grayscale,
        3 => png::ColorType::Rgb,
        4 => png::ColorType::Rgba,
        n => {
            return Err(Error::invalid(format!(
                "cannot write a PNG with {n} channels"
            )))
        }
    };
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width as u32, height as u32);
    encoder.set_color(colour);
    encoder.set_depth(png::BitDepth::Eight);
    let err = |e: png::EncodingError| Error::invalid(format!("writing PNG: {e}"));
    let mut writer = encoder.write_header().map_err(err)?;
    writer.write_image_data(pixels).map_err(err)?;
    writer.finish().map_err(err)?;
    Ok(out)
}

/// A 16-bit grayscale TIFF of values in [0, 1] (the datasets' raw format), rounded to 1/65535.
pub fn tiff_gray16(width: usize, height: usize, values: &[f32]) -> Result<Vec<u8>> {
    let samples: Vec<u16> = values
        .iter()
        .map(|v| (v.clamp(0.0, 1.0) * 65535.0).round() as u16)
        .collect();
    let mut out = Cursor::new(Vec::new());
    let err = |e: tiff::TiffError| Error::invalid(format!("writing TIFF: {e}"));
    tiff::encoder::TiffEncoder::new(&mut out)
        .map_err(err)?
        .write_image::<tiff::encoder::colortype::Gray16>(width as u32, height as u32, &samples)
        .map_err(err)?;
    Ok(out.into_inner())
}

/// A 32-bit float grayscale TIFF, as the paper's code writes its tiles: values kept exactly.
pub fn tiff_f32(width: usize, height: usize, values: &[f32]) -> Result<Vec<u8>> {
    let mut out = Cursor::new(Vec::new());
    let err = |e: tiff::TiffError| Error::invalid(format!("writing TIFF: {e}"));
    tiff::encoder::TiffEncoder::new(&mut out)
        .map_err(err)?
        .write_image::<tiff::encoder::colortype::Gray32Float>(width as u32, height as u32, values)
        .map_err(err)?;
    Ok(out.into_inner())
}

/// CSV text: the header, then a record per row. The writer quotes a field where it holds a comma,
/// a quote or a line break (RFC 4180); the caller formats the numbers, as the tables show them.
pub fn csv_text<R>(
    header: impl IntoIterator<Item: AsRef<str>>,
    rows: impl IntoIterator<Item = R>,
) -> String
where
    R: IntoIterator<Item: AsRef<str>>,
{
    // flexible: a record's length is the caller's, so that writing into memory cannot fail
    let mut writer = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    let header: csv::StringRecord = header.into_iter().collect();
    std::iter::once(header)
        .chain(rows.into_iter().map(|row| row.into_iter().collect()))
        .try_for_each(|record| writer.write_record(&record))
        .expect("CSV written into memory");
    let bytes = writer.into_inner().expect("CSV flushed into memory");
    String::from_utf8(bytes).expect("CSV of UTF-8 fields is UTF-8")
}

/// The records of CSV text after its header, each with the line it starts on (from 1); `file`
/// names the text in errors (a field that is no UTF-8).
pub fn csv_records(bytes: &[u8], file: &str) -> Result<Vec<(u64, csv::StringRecord)>> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    reader
        .records()
        .map(|record| {
            let record = record.map_err(|e| Error::decode(file, format!("CSV: {e}")))?;
            let line = record.position().map_or(0, csv::Position::line);
            Ok((line, record))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_npy_write_names_the_file() {
        struct Full;
        impl std::io::Write for Full {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::StorageFull.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let err = write_npy_f32(&mut Full, &[2, 2], &[0.0; 4], "out/t01/view.npy").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot write out/t01/view.npy: "),
            "{err}"
        );
    }

    #[test]
    fn npy_f32_is_byte_for_byte_npyzs_own_writer() {
        use npyz::WriterBuilder;
        let data: Vec<f32> = (0..2 * 3 * 5).map(|i| i as f32 * -0.37 + 1e-30).collect();
        let mut theirs = Vec::new();
        let mut writer = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&[2, 3, 5])
            .writer(&mut theirs)
            .begin_nd()
            .unwrap();
        writer.extend(data.iter().copied()).unwrap();
        writer.finish().unwrap();
        assert_eq!(npy_f32(&[2, 3, 5], &data).unwrap(), theirs);
    }

    #[test]
    fn a_field_with_a_comma_and_a_quote_round_trips_through_csv() {
        let odd = "frozen, \"static\" view";
        let text = csv_text(["file", "class"], [[odd, "LYT"], ["b.tif", ""]]);
        assert_eq!(
            text,
            "file,class\n\"frozen, \"\"static\"\" view\",LYT\nb.tif,\n"
        );
        let records = csv_records(text.as_bytes(), "t.csv").unwrap();
        let fields: Vec<(u64, Vec<&str>)> = records
            .iter()
            .map(|(line, r)| (*line, r.iter().collect()))
            .collect();
        assert_eq!(fields, [(2, vec![odd, "LYT"]), (3, vec!["b.tif", ""])]);
        let e = csv_records(b"a,b\n\xff,1\n", "t.csv").unwrap_err();
        assert!(e.to_string().contains("t.csv"), "{e}");
    }

    #[test]
    fn read_npy_any_rank_and_fortran_order() {
        let bytes = npy_f32(&[2, 1, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        assert_eq!(
            read_npy(&bytes, "x").unwrap(),
            (vec![2, 1, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
        );
        use npyz::WriterBuilder;
        let mut fortran = Vec::new();
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .order(npyz::Order::Fortran)
            .shape(&[2, 3])
            .writer(&mut fortran)
            .begin_nd()
            .unwrap();
        // column-major storage of [[1, 2, 3], [4, 5, 6]]
        w.extend([1.0f32, 4.0, 2.0, 5.0, 3.0, 6.0]).unwrap();
        w.finish().unwrap();
        assert_eq!(
            read_npy(&fortran, "f").unwrap().1,
            vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        );
        assert!(read_npy(&bytes[..bytes.len() - 4], "cut").is_err());
        // a header length far beyond the file (found by the fuzzer: it made npyz allocate 2.6 GB)
        let mut huge = bytes.clone();
        huge[6] = 3;
        huge[8..12].copy_from_slice(&0x9c78_5441u32.to_le_bytes());
        assert!(read_npy(&huge, "huge")
            .unwrap_err()
            .to_string()
            .contains("header"));
    }
}
