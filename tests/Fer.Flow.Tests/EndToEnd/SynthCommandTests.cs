using Fer.Core.Data;

namespace Fer.Flow.Tests.EndToEnd;

[Collection(EndToEndCollection.Name)]
public class SynthCommandTests
{
    [Theory]
    [InlineData("course")]
    [InlineData("kaggle")]
    public void SynthWritesFilesTheReaderReadsBackAndTheSameFacesInEveryProcess(string format)
    {
        using var dir = new TempDir();
        using (var fer = new FerProcess("synth", "--out", dir.Path, "--count", "60", "--format", format, "--seed", "4"))
            Assert.Equal(0, fer.WaitForExit(TimeSpan.FromMinutes(2)));
        // Generated in this process: a child process must produce the very same images (no per-process hashing).
        var expected = SyntheticFaces.Generate(new SyntheticFaceOptions(60, 4));
        if (format == "course")
        {
            var train = FerCsvReader.Read(dir["train.csv"]);
            var test = FerCsvReader.Read(dir["test.csv"]);
            Assert.Equal(FerCsvFormat.CourseTrain, train.Format);
            Assert.Equal(FerCsvFormat.CourseTest, test.Format);
            Assert.Equal(54, train.Faces.Count);
            Assert.Equal(6, test.Faces.Count);
            Assert.Equal(expected.Pixels[..(54 * 2304)], train.Faces.Pixels);
            Assert.Equal(expected.Labels[..54], train.Faces.Labels);
            Assert.False(test.Faces.HasLabels);
        }
        else
        {
            var all = FerCsvReader.Read(dir["fer2013.csv"]);
            Assert.Equal(FerCsvFormat.Kaggle, all.Format);
            Assert.Equal(expected.Pixels, all.Faces.Pixels);
            Assert.Equal([48, 6, 6], new[] { FaceUsage.Training, FaceUsage.PublicTest, FaceUsage.PrivateTest }.Select(u => all.Faces.Usage.Count(x => x == u)));
        }
    }
}
