using Fer.Core.Models;

namespace Fer.Core.Tests.Models;

/// <summary>A weights file's tensor names and shapes, read without loading it, and how they differ from a model's.</summary>
public class SavedWeightsTests
{
    [Fact]
    public void NamesAndShapesAreTheSavedModelsAndTheFirstDifferenceIsNamed()
    {
        var path = Path.GetTempFileName();
        try
        {
            using (var saved = new FerVgg(7, 48, 0.5, 0.3)) saved.save(path);
            using var same = new FerVgg(7, 48, 0.5, 0.3);
            Assert.Equal(same.state_dict().Select(p => (p.Key, p.Value.shape)), SavedWeights.Describe(path).Select(t => (t.Name, t.Shape)));
            Assert.Null(SavedWeights.Mismatch(same, path));
            using var wider = new FerVgg(7, 48, 1.0, 0.3);
            Assert.Equal("conv2d_1.weight is [32, 1, 3, 3] in the saved weights, [64, 1, 3, 3] in the model", SavedWeights.Mismatch(wider, path));
            using var other = new SeedCnn();
            Assert.Equal("conv2d_1.conv.weight is not in the saved weights", SavedWeights.Mismatch(other, path));
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void ADamagedFileIsAnErrorNotAHugeAllocation()
    {
        var path = Path.GetTempFileName();
        try
        {
            using (var saved = new SeedDnn()) saved.save(path);
            var bytes = File.ReadAllBytes(path);
            File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
            Assert.Throws<InvalidDataException>(() => SavedWeights.Describe(path)); // the tensor runs past the end
            File.WriteAllBytes(path, [0xFF, 0xFF, 0xFF, 0xFF, 0x0F]); // claims 4 billion tensors
            Assert.Throws<InvalidDataException>(() => SavedWeights.Describe(path));
        }
        finally { File.Delete(path); }
    }
}
