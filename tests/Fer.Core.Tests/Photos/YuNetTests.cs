using Fer.Core.Photos;
using Fer.Tests.Shared;
using OpenCvSharp;

namespace Fer.Core.Tests.Photos;

/// <summary>
/// YuNet through OpenCV's FaceDetectorYN, with tests/data/yunet/fake-yunet.onnx: YuNet's interface and a known rule (a
/// white 32x32 square on the 32-pixel grid is one face, its eyes tilted by 20.6 degrees), since the real model is not
/// in the repository. What is checked is Fer's side: loading, downscaling, coordinates, landmarks, alignment.
/// </summary>
public class YuNetTests
{
    private static string FakeModel => Path.Combine(FindRoot(), "tests", "data", "yunet", "fake-yunet.onnx");
    private static readonly double FakeEyeAngle = Math.Atan2(0.15, 0.4) * 180 / Math.PI;

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Fer.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Fer.sln not found");
    }

    private static Mat Picture(int width, int height, params (int X, int Y, int Side)[] squares)
    {
        var gray = new Mat(new Size(width, height), MatType.CV_8UC1, Scalar.All(0));
        foreach (var (x, y, side) in squares) gray.Rectangle(new Rect(x, y, side, side), Scalar.All(255), -1);
        return gray;
    }

    [SkippableFact]
    public void Faces_come_back_in_the_images_pixels_with_landmarks_and_scores_also_after_downscaling()
    {
        OpenCvForTests.SkipUnlessLoads();
        using var finder = new YuNetFaceFinder(FakeModel, detectionSide: 640);
        Assert.False(finder.IsOfficialModel);
        // Two faces at full size (the image is smaller than the detection side): reading order, exact boxes.
        using (var gray = Picture(320, 200, (224, 96, 32), (64, 32, 32)))
        {
            var faces = finder.Find(gray);
            Assert.Equal([new FaceBox(64, 32, 32, 32), new FaceBox(224, 96, 32, 32)], faces.Select(f => new FaceBox(f.X, f.Y, f.W, f.H)));
            var first = faces[0];
            Assert.InRange(first.Score!.Value, 0.99f, 1f);
            var l = first.Landmarks!;
            Assert.Equal((64 + 0.3f * 32, 32 + 0.3f * 32), (l.RightEye.X, l.RightEye.Y));
            Assert.Equal((64 + 0.7f * 32, 32 + 0.45f * 32), (l.LeftEye.X, l.LeftEye.Y));
            Assert.Equal(FakeEyeAngle, l.EyeAngleDegrees, 3);
        }
        // A 1280x1280 image is detected at 640: the face found there comes back at twice the size, where it is.
        using (var big = Picture(1280, 1280, (128, 256, 64)))
        {
            var face = Assert.Single(finder.Find(big));
            Assert.Equal(new FaceBox(128, 256, 64, 64), new FaceBox(face.X, face.Y, face.W, face.H));
            Assert.Equal((128 + 0.3f * 64, 256 + 0.3f * 64), (face.Landmarks!.RightEye.X, face.Landmarks.RightEye.Y));
        }
        using (var empty = Picture(200, 100))
            Assert.Empty(finder.Find(empty));
    }

    [SkippableFact]
    public void Alignment_turns_the_face_so_the_eyes_are_level()
    {
        OpenCvForTests.SkipUnlessLoads();
        // A bright bar through both eyes, tilted as the landmarks say, on a dark picture: after alignment the bar is a
        // horizontal band of the crop; without it, the bar crosses many rows.
        var box = new FaceBox(100, 100, 100, 100);
        var rightEye = new LandmarkPoint(125, 135);
        double angle = 20 * Math.PI / 180;
        var leftEye = new LandmarkPoint((float)(125 + 60 * Math.Cos(angle)), (float)(135 + 60 * Math.Sin(angle)));
        var landmarks = new FaceLandmarks(rightEye, leftEye, new LandmarkPoint(150, 160), new LandmarkPoint(135, 180), new LandmarkPoint(165, 180));
        Assert.Equal(20, landmarks.EyeAngleDegrees, 3);
        using var gray = new Mat(new Size(300, 300), MatType.CV_8UC1, Scalar.All(0));
        var along = new Point2d(Math.Cos(angle), Math.Sin(angle));
        gray.Line(new Point(125 - 200 * along.X, 135 - 200 * along.Y), new Point(125 + 200 * along.X, 135 + 200 * along.Y), Scalar.All(255), 4);

        int Rows(bool align)
        {
            var crop = new byte[48 * 48];
            FaceCrops.Crop(gray, box with { Landmarks = landmarks }, 48, 0.1, crop, align);
            return Enumerable.Range(0, 48).Count(r => Enumerable.Range(0, 48).Any(c => crop[r * 48 + c] > 128));
        }
        int aligned = Rows(align: true), tilted = Rows(align: false);
        Assert.InRange(aligned, 1, 4);          // a 4-pixel line at 48/120 scale: one or two rows, three at most with blur
        Assert.True(tilted >= 12, $"the unaligned bar spans {tilted} rows");
        // A box without landmarks (Haar's) is cropped as before, alignment or not.
        var plain = new byte[48 * 48];
        var again = new byte[48 * 48];
        FaceCrops.Crop(gray, box, 48, 0.1, plain, align: true);
        FaceCrops.Crop(gray, box, 48, 0.1, again, align: false);
        Assert.Equal(plain, again);
    }

    [SkippableFact]
    public void A_file_that_is_not_a_YuNet_model_is_one_line_naming_it()
    {
        OpenCvForTests.SkipUnlessLoads();
        using var dir = new TempFolder();
        var notModel = Path.Combine(dir.Path, "model.onnx");
        File.WriteAllText(notModel, "not an onnx file");
        var e = Assert.Throws<PhotoInputException>(() => new YuNetFaceFinder(notModel));
        Assert.Contains("not a YuNet ONNX model", e.Message);
        Assert.Contains("model.onnx", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        e = Assert.Throws<PhotoInputException>(() => new YuNetFaceFinder(Path.Combine(dir.Path, "missing.onnx")));
        Assert.Contains("YuNet model not found", e.Message);
        Assert.Contains("opencv_zoo", e.Message);
        e = Assert.Throws<PhotoInputException>(() => new YuNetFaceFinder(dir.Path));
        Assert.Contains("directory", e.Message);
    }

    private sealed class TempFolder : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("fer-yunet-").FullName;
        public void Dispose() => Directory.Delete(Path, true);
    }
}
