using Fer.Core.Data;
using Fer.Core.Storage;

namespace Fer.Core.Tests.Storage;

public class ParquetTensorStoreTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "fer-parquet-" + Guid.NewGuid().ToString("N")[..8]);
    public ParquetTensorStoreTests() => Directory.CreateDirectory(_dir);
    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public async Task FaceSetsRoundTripBitExactWithUnlabelledRowsAndEveryByteValue()
    {
        var faces = FaceAugment.AddMirrorTwins(SyntheticFaces.Generate(new SyntheticFaceOptions(300, 9, Side: 16)));
        for (int i = 0; i < 256; i++) faces.Pixels[i] = (byte)i;
        faces.Labels[7] = FaceSet.Unlabeled;
        faces.Usage[8] = FaceUsage.Test;
        faces.Usage[9] = FaceUsage.PublicTest;
        var path = Path.Combine(_dir, "faces.parquet");
        await ParquetTensorStore.WriteFacesAsync(path, faces, new Dictionary<string, string> { ["note"] = "x" });
        var back = await ParquetTensorStore.ReadFacesAsync(path);
        Fer.Core.Tests.Data.FerCsvTestData.AssertSameFaces(faces, back);
        Assert.Equal(faces.ClassNames, back.ClassNames);
        Assert.Equal("x", (await ParquetTensorStore.ReadMetadataAsync(path))["note"]);
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp"));
    }

    /// <summary>A face table as the first format wrote it (usage as enum numbers), or with the given usage names.</summary>
    private static async Task WriteHandMadeFaces(string path, string format, Parquet.Schema.DataField usageField, Func<Parquet.ParquetRowGroupWriter, Task> writeUsage)
    {
        var id = new Parquet.Schema.DataField<long>("id");
        var label = new Parquet.Schema.DataField<int?>("label");
        var source = new Parquet.Schema.DataField<long>("source_id");
        var flipped = new Parquet.Schema.DataField<bool>("flipped");
        var pixels = new Parquet.Schema.DataField<byte[]>("pixels");
        await using var stream = File.Create(path);
        await using var writer = await Parquet.ParquetWriter.CreateAsync(new Parquet.Schema.ParquetSchema(id, label, source, flipped, usageField, pixels), stream);
        writer.CustomMetadata = new Dictionary<string, string> { ["fer.format"] = format, ["fer.side"] = "2", ["fer.class_names"] = "[\"a\",\"b\"]" };
        using var rg = writer.CreateRowGroup();
        await rg.WriteAsync<long>(id, new long[] { 10, 11 }.AsMemory());
        await rg.WriteAsync<int>(label, new int?[] { 1, null }.AsMemory());
        await rg.WriteAsync<long>(source, new long[] { 10, 11 }.AsMemory());
        await rg.WriteAsync<bool>(flipped, new[] { false, false }.AsMemory());
        await writeUsage(rg);
        await rg.WriteAsync(pixels, new[] { new byte[] { 1, 2, 3, 4 }, new byte[] { 5, 6, 7, 8 } }, null);
    }

    [Fact]
    public async Task UsageIsStoredByNameAndFirstFormatFilesWithNumbersStillRead()
    {
        var faces = SyntheticFaces.Generate(new SyntheticFaceOptions(4, 2, Side: 8));
        faces.Usage[1] = FaceUsage.PublicTest; faces.Usage[2] = FaceUsage.PrivateTest; faces.Usage[3] = FaceUsage.Test;
        var path = Path.Combine(_dir, "faces.parquet");
        await ParquetTensorStore.WriteFacesAsync(path, faces);
        await using (var stream = File.OpenRead(path))
        await using (var reader = await Parquet.ParquetReader.CreateAsync(stream))
        {
            using var rg = reader.OpenRowGroupReader(0);
            var stored = new string?[4];
            await rg.ReadAsync(reader.Schema.DataFields.Single(f => f.Name == "usage"), stored.AsMemory());
            Assert.Equal(["Training", "PublicTest", "PrivateTest", "Test"], stored.Select(n => n ?? "(null)"));
        }

        var v1 = Path.Combine(_dir, "v1.parquet");
        var numbers = new Parquet.Schema.DataField<int>("usage");
        await WriteHandMadeFaces(v1, "fer-faces-1", numbers, rg => rg.WriteAsync<int>(numbers, new[] { 2, 3 }.AsMemory()));
        Assert.Equal([FaceUsage.PrivateTest, FaceUsage.Test], (await ParquetTensorStore.ReadFacesAsync(v1)).Usage);

        var bad = Path.Combine(_dir, "bad.parquet");
        var names = new Parquet.Schema.DataField<string>("usage");
        await WriteHandMadeFaces(bad, "fer-faces-2", names, rg => rg.WriteAsync(names, new[] { "Training", "Holdout" }, null));
        var e = await Assert.ThrowsAsync<InvalidDataException>(() => ParquetTensorStore.ReadFacesAsync(bad));
        Assert.Contains("bad.parquet: row 1 has unknown usage 'Holdout'", e.Message);
    }

    [Fact]
    public async Task FloatTensorsRoundTripBitExactIncludingSpecialValues()
    {
        var data = new float[3 * 2 * 5];
        var random = new Random(1);
        for (int i = 0; i < data.Length; i++) data[i] = (float)(random.NextDouble() * 2 - 1) * MathF.Pow(10, random.Next(-30, 30));
        data[0] = float.NaN; data[1] = -0f; data[2] = float.Epsilon; data[3] = float.MaxValue; data[4] = float.NegativeInfinity;
        var path = Path.Combine(_dir, "t.parquet");
        await ParquetTensorStore.WriteTensorAsync(path, data, [3, 2, 5], new Dictionary<string, string> { ["set"] = "valid" });
        var back = await ParquetTensorStore.ReadTensorAsync(path);
        Assert.Equal([3, 2, 5], back.Shape);
        Assert.Equal("valid", back.Metadata["set"]);
        Assert.Equal(data.Select(BitConverter.SingleToInt32Bits), back.Data.Select(BitConverter.SingleToInt32Bits));
    }

    [Fact]
    public async Task EmptySetsWork()
    {
        var path = Path.Combine(_dir, "empty.parquet");
        await ParquetTensorStore.WriteFacesAsync(path, FaceSet.Empty(48, FaceSet.Fer2013Classes));
        Assert.Equal(0, (await ParquetTensorStore.ReadFacesAsync(path)).Count);
        await ParquetTensorStore.WriteTensorAsync(path, [], [0, 7]);
        Assert.Empty((await ParquetTensorStore.ReadTensorAsync(path)).Data);
    }

    [Fact]
    public async Task DamagedOrForeignFilesAreClearErrorsNamingTheFile()
    {
        var path = Path.Combine(_dir, "faces.parquet");
        await ParquetTensorStore.WriteFacesAsync(path, SyntheticFaces.Generate(new SyntheticFaceOptions(20, 1, Side: 8)));
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        var truncated = await Assert.ThrowsAsync<InvalidDataException>(() => ParquetTensorStore.ReadFacesAsync(path));
        Assert.Contains(path, truncated.Message);
        File.WriteAllText(path, "not parquet at all");
        await Assert.ThrowsAsync<InvalidDataException>(() => ParquetTensorStore.ReadFacesAsync(path));
        var tensor = Path.Combine(_dir, "t.parquet");
        await ParquetTensorStore.WriteTensorAsync(tensor, [1, 2], [1, 2]);
        Assert.Contains("not a Fer face set", (await Assert.ThrowsAsync<InvalidDataException>(() => ParquetTensorStore.ReadFacesAsync(tensor))).Message);
    }
}
