using Fer.Core.Photos;
using Fer.Tests.Shared;

namespace Fer.Core.Tests.Photos;

public class PhotoCoreTests
{
    [Fact]
    public void A_crop_is_the_box_widened_by_the_margin_made_square_and_clamped_to_the_image()
    {
        // 100x60 box at (200, 100): longer side 100, plus 10% each side = 120, centred on (250, 130).
        Assert.Equal(new FaceBox(190, 70, 120, 120), FaceCrops.CropRegion(new FaceBox(200, 100, 100, 60), 1000, 1000, 0.1));
        // Near the top-left corner the square is cut by the image edge.
        Assert.Equal(new FaceBox(0, 0, 60, 60), FaceCrops.CropRegion(new FaceBox(5, 5, 50, 50), 1000, 1000, 0.1));
        Assert.Equal(new FaceBox(0, 0, 60, 70), FaceCrops.CropRegion(new FaceBox(0, 10, 50, 50), 1000, 1000, 0.2)); // 70 square centred on (25, 35)
        // A whole-image box (--no-detect on a 48x48 crop) stays the whole image.
        Assert.Equal(new FaceBox(0, 0, 48, 48), FaceCrops.CropRegion(new FaceBox(0, 0, 48, 48), 48, 48, 0.1));
        Assert.Throws<ArgumentOutOfRangeException>(() => FaceCrops.CropRegion(new FaceBox(0, 0, 4, 4), 8, 8, 1.5));
    }

    [SkippableFact]
    public void A_crop_of_a_48_pixel_image_with_no_detection_is_its_pixels_unchanged()
    {
        OpenCvForTests.SkipUnlessLoads();
        var pixels = Enumerable.Range(0, 48 * 48).Select(i => (byte)(i * 7 % 251)).ToArray();
        using var gray = OpenCvSharp.Mat.FromPixelData(48, 48, OpenCvSharp.MatType.CV_8UC1, pixels);
        var crop = new byte[48 * 48];
        FaceCrops.Crop(gray, new FaceBox(0, 0, 48, 48), 48, 0.1, crop);
        Assert.Equal(pixels, crop);
    }

    /// <summary>A few hundred bytes of JPEG whose header claims a huge image: refused before its pixels take memory.</summary>
    [SkippableTheory]
    [InlineData(0x7D00, "image is 32000x32000 (1024 megapixels), more than 268 allowed")]
    [InlineData(0x3E80, "the header claims 16000x16000 pixels, but the file holds")]
    public void A_tiny_file_claiming_a_huge_image_is_refused_before_decoding(int side, string problem)
    {
        OpenCvForTests.SkipUnlessLoads();
        using var bitmap = new SkiaSharp.SKBitmap(8, 8);
        bitmap.Erase(SkiaSharp.SKColors.Gray);
        var jpeg = bitmap.Encode(SkiaSharp.SKEncodedImageFormat.Jpeg, 90).ToArray();
        int sof = Enumerable.Range(0, jpeg.Length - 9).First(i => jpeg[i] == 0xFF && jpeg[i + 1] is 0xC0 or 0xC1 or 0xC2);
        jpeg[sof + 5] = (byte)(side >> 8); jpeg[sof + 6] = (byte)side; // height
        jpeg[sof + 7] = (byte)(side >> 8); jpeg[sof + 8] = (byte)side; // width
        var path = Path.Combine(Path.GetTempPath(), $"fer-bomb-{Guid.NewGuid():N}.jpg");
        File.WriteAllBytes(path, jpeg);
        try { Assert.Contains(problem, Assert.Throws<PhotoInputException>(() => ImageLoader.Load(path)).Message); }
        finally { File.Delete(path); }
    }

    [Fact]
    public void The_timeline_averages_each_seconds_faces()
    {
        var faces = new List<(double, float[])>
        {
            (0.0, [1f, 0f]), (0.5, [0f, 1f]), (2.9, [0.25f, 0.75f]),
        };
        var seconds = EmotionTimeline.PerSecond(faces, 2);
        Assert.Equal([0, 2], seconds.Select(s => s.Second));
        Assert.Equal([2, 1], seconds.Select(s => s.Faces));
        Assert.Equal([0.5, 0.5], seconds[0].MeanProbabilities);
        Assert.Equal([0.25, 0.75], seconds[1].MeanProbabilities);
    }

    [Fact]
    public void Csv_fields_with_commas_or_quotes_are_quoted()
    {
        Assert.Equal("plain.png", PhotoCsv.Escape("plain.png"));
        Assert.Equal("\"a,b.png\"", PhotoCsv.Escape("a,b.png"));
        Assert.Equal("\"say \"\"hi\"\".png\"", PhotoCsv.Escape("say \"hi\".png"));
    }

    [Fact]
    public void A_failed_OpenCV_load_names_the_missing_library_and_its_Debian_package_in_one_line()
    {
        // The loader's message as .NET 10 reports it on a machine without GTK 3 (one line per probed path).
        var missing = new DllNotFoundException(
            "Unable to load shared library 'OpenCvSharpExtern' or one of its dependencies. In order to help diagnose loading problems, consider using a tool like strace.\n" +
            "/app/runtimes/linux-x64/native/libOpenCvSharpExtern.so: cannot open shared object file: No such file or directory\n" +
            "libgtk-3.so.0: cannot open shared object file: No such file or directory\n");
        var line = OpenCvNative.Describe(new TypeInitializationException("OpenCvSharp.Internal.NativeMethods", missing));
        Assert.Equal("OpenCV's native library (OpenCvSharpExtern) cannot load libgtk-3.so.0, which is missing (on Debian or Ubuntu: apt-get install libgtk-3-0)", line);

        var unknown = OpenCvNative.Describe(new DllNotFoundException("libfoo.so.7: cannot open shared object file: No such file or directory"));
        Assert.Equal("OpenCV's native library (OpenCvSharpExtern) cannot load libfoo.so.7, which is missing (install the package that provides libfoo.so.7)", unknown);

        var other = OpenCvNative.Describe(new BadImageFormatException("wrong ELF class: ELFCLASS32\nsecond line"));
        Assert.Equal("OpenCV's native library (OpenCvSharpExtern) does not load: wrong ELF class: ELFCLASS32", other);
    }
}
