using Fer.Core.Data;

namespace Fer.Core.Tests.Data;

public class SyntheticFacesTests
{
    [Fact]
    public void GenerationIsDeterministicPerSeedAndIdAndBalanced()
    {
        var a = SyntheticFaces.Generate(new SyntheticFaceOptions(700, 5));
        var b = SyntheticFaces.Generate(new SyntheticFaceOptions(700, 5));
        var c = SyntheticFaces.Generate(new SyntheticFaceOptions(700, 6));
        Assert.Equal(a.Pixels, b.Pixels);
        Assert.Equal(a.Labels, b.Labels);
        Assert.NotEqual(a.Pixels, c.Pixels);
        Assert.Equal(a.Pixels[(42 * 2304)..(43 * 2304)], SyntheticFaces.Render(5, 42).Pixels);
        var counts = a.ClassCounts();
        Assert.All(counts, n => Assert.InRange(n, 60, 140));
        Assert.Equal(48, a.Side);
        Assert.True(a.HasLabels);
    }

    [Fact]
    public void EvidenceMasksCoverTheFeaturesOnlyAndMirrorWithTheImage()
    {
        var faces = SyntheticFaces.Generate(new SyntheticFaceOptions(50, 1));
        var masks = SyntheticFaces.EvidenceMasks(faces, 1);
        for (int i = 0; i < faces.Count; i++)
        {
            var share = masks.AsSpan(i * 2304, 2304).ToArray().Average();
            Assert.InRange(share, 0.05, 0.45);
        }
        var twins = FaceAugment.AddMirrorTwins(faces);
        var twinMasks = SyntheticFaces.EvidenceMasks(twins, 1);
        for (int x = 0; x < 48; x++)
            Assert.Equal(twinMasks[(50 * 2304) + 20 * 48 + x], masks[20 * 48 + 47 - x]);
    }

    [Fact]
    public void ClassProportionsAreHonoured()
    {
        var faces = SyntheticFaces.Generate(new SyntheticFaceOptions(400, 2, ClassProportions: [0, 0, 0, 1, 0, 0, 1]));
        Assert.All(faces.Labels, l => Assert.True(l is 3 or 6));
        Assert.Throws<ArgumentException>(() => SyntheticFaces.Generate(new SyntheticFaceOptions(5, 2, ClassProportions: [1, 2])));
    }
}

public class AugmentAndSplitTests
{
    private static FaceSet Faces(int n, int seed = 3)
    {
        var faces = SyntheticFaces.Generate(new SyntheticFaceOptions(n, seed, Side: 24));
        for (int i = n - n / 10; i < n; i++) faces.Usage[i] = FaceUsage.PrivateTest;
        return faces;
    }

    [Fact]
    public void MirrorTwinsAreFlippedCopiesOfTrainingRowsOnly()
    {
        var faces = Faces(100);
        var augmented = FaceAugment.AddMirrorTwins(faces);
        Assert.Equal(190, augmented.Count);
        for (int k = 100; k < 190; k++)
        {
            int source = (int)augmented.SourceIds[k];
            Assert.True(augmented.Flipped[k]);
            Assert.Equal(augmented.Ids[k], faces.Ids[source]);
            Assert.Equal(faces.Labels[source], augmented.Labels[k]);
            var image = augmented.Image(k).ToArray();
            FaceAugment.FlipInPlace(image, 24);
            Assert.Equal(faces.Image(source).ToArray(), image);
        }
        Assert.DoesNotContain(Enumerable.Range(100, 90), k => augmented.Usage[k] != FaceUsage.Training);
    }

    [Fact]
    public void LeakFreeSplitKeepsTwinsTogetherAndValidatesOnOriginalsOnly()
    {
        var all = FaceAugment.AddMirrorTwins(Faces(1000));
        var split = FaceSplitter.Split(all, new SplitOptions(0.2, Seed: 4));
        var validSources = split.Valid.SourceIds.ToHashSet();
        Assert.DoesNotContain(split.Train.SourceIds, validSources.Contains);
        Assert.DoesNotContain(true, split.Valid.Flipped);
        Assert.Equal(100, split.Test.Count);
        Assert.InRange(split.Valid.Count, 170, 190);
        Assert.Equal(2 * (900 - split.Valid.Count), split.Train.Count);
        // Stratified: each class's share of validation is close to its share of the pool.
        var pool = all.Labels.Where((_, i) => all.Usage[i] == FaceUsage.Training && !all.Flipped[i]).ToArray();
        for (int c = 0; c < 7; c++)
            Assert.InRange(split.Valid.Labels.Count(l => l == c) / (double)split.Valid.Count - pool.Count(l => l == c) / (double)pool.Length, -0.02, 0.02);
        var again = FaceSplitter.Split(all, new SplitOptions(0.2, Seed: 4));
        Assert.Equal(split.Valid.Ids, again.Valid.Ids);
        Assert.NotEqual(split.Valid.Ids, FaceSplitter.Split(all, new SplitOptions(0.2, Seed: 5)).Valid.Ids);
    }

    [Fact]
    public void LeakySplitLetsMirrorTwinsStraddleTheSplit()
    {
        var all = FaceAugment.AddMirrorTwins(Faces(1000));
        var split = FaceSplitter.Split(all, new SplitOptions(0.2, Seed: 4, Leaky: true));
        var validSources = split.Valid.SourceIds.ToHashSet();
        Assert.True(split.Train.SourceIds.Count(validSources.Contains) > 100);
        Assert.Contains(true, split.Valid.Flipped);
    }

    [Fact]
    public void UsageModeMapsKaggleUsages()
    {
        var faces = Faces(100);
        for (int i = 80; i < 90; i++) faces.Usage[i] = FaceUsage.PublicTest;
        var split = FaceSplitter.Split(FaceAugment.AddMirrorTwins(faces), new SplitOptions(Mode: SplitMode.Usage));
        Assert.Equal(160, split.Train.Count);
        Assert.Equal(10, split.Valid.Count);
        Assert.Equal(10, split.Test.Count);
        Assert.All(split.Test.Usage, u => Assert.Equal(FaceUsage.PrivateTest, u));
        Assert.Throws<ArgumentException>(() => FaceSplitter.Split(faces, new SplitOptions(ValidFraction: 1.5)));
    }
}
