using Fer.Core.Ensemble;
using Fer.Core.Explain;
using Fer.Core.Models;
using Fer.Core.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Fer.Core.Tests.Models;

/// <summary>The published recipe's crops: a model that sees the centre 40x40 of a 48x48 face, random crops in training, ten crops in prediction.</summary>
public class CenterCropTests
{
    private const int Side = 48, Crop = 40, Margin = (Side - Crop) / 2;

    /// <summary>vgg-bn with a 40 crop, and the same network built for 40x40 images holding the same weights (eval mode).</summary>
    private static (FerVgg Cropped, FerVgg Plain) Twins()
    {
        var cropped = new FerVgg(7, Side, width: 0.125, crop: Crop);
        var plain = new FerVgg(7, Crop, width: 0.125);
        cropped.Initialize(5);
        cropped.SetInputNormalization(0.4f, 0.25f);
        // Batch-norm statistics moved off 0 and 1 by a few training-mode passes, so the outputs depend on the input.
        using (torch.no_grad())
        using (var scope = torch.NewDisposeScope())
            for (int i = 0; i < 3; i++) cropped.call(Images(16, 100 + i));
        plain.load_state_dict(cropped.state_dict());
        cropped.eval();
        plain.eval();
        return (cropped, plain);
    }

    private static Tensor Images(int n, long seed) => torch.rand([n, 1, Side, Side], generator: new torch.Generator((ulong)seed));

    [Fact]
    public void AModelWithACropIsTheSameNetworkOnTheCentreOfItsInput()
    {
        var (cropped, plain) = Twins();
        using var _ = cropped;
        using var __ = plain;
        Assert.Equal(Margin, cropped.CropMargin);
        Assert.Equal(0, plain.CropMargin);
        Assert.Equal("cropping2d_1", cropped.Layers[0].Name);
        // The crop adds no parameter: the two nets hold the same tensors under the same names and shapes.
        Assert.Equal(plain.state_dict().Select(p => (p.Key, string.Join(",", p.Value.shape))), cropped.state_dict().Select(p => (p.Key, string.Join(",", p.Value.shape))));
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var x = Images(5, 1);
        var expected = plain.call(x.narrow(2, Margin, Crop).narrow(3, Margin, Crop));
        Assert.True(cropped.call(x).allclose(expected, rtol: 1e-5, atol: 1e-6));
        // Pixels in the margin change nothing; a pixel inside does.
        var marginChanged = x.clone();
        marginChanged.narrow(2, 0, Margin).fill_(1);
        Assert.True(cropped.call(marginChanged).allclose(expected, rtol: 1e-5, atol: 1e-6));
    }

    [Fact]
    public void TenCropAveragesTheCentreAndCornerCropsAndTheirMirrorsAndFlipIsAllAModelWithoutACropGets()
    {
        var (cropped, plain) = Twins();
        using var _ = cropped;
        using var __ = plain;
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var x = Images(4, 2);
        // torchvision's TenCrop(40) of the 48x48 image: the four corners and the centre, each also mirrored.
        var crops = new List<Tensor>();
        foreach (var (top, left) in new[] { (0, 0), (0, 2 * Margin), (2 * Margin, 0), (2 * Margin, 2 * Margin), (Margin, Margin) })
        {
            var crop = x.narrow(2, top, Crop).narrow(3, left, Crop);
            crops.Add(crop);
            crops.Add(crop.flip(3));
        }
        var expected = torch.stack(crops.Select(c => plain.call(c).softmax(1))).mean([0]);
        var tenCrop = Predictor.Softmax(cropped, x, TestTimeAugmentation.TenCrop);
        Assert.True(tenCrop.allclose(expected, rtol: 1e-5, atol: 1e-6), $"max difference {(tenCrop - expected).abs().max().item<float>()}");
        Assert.Equal(10, Predictor.Views(cropped, TestTimeAugmentation.TenCrop));
        // It differs from the centre crop alone (by 4.5e-5 here, an untrained net), so the corners were really used.
        var fromCentre = (tenCrop - Predictor.Softmax(cropped, x, TestTimeAugmentation.None)).abs().max().item<float>();
        Assert.True(fromCentre > 1e-6f, $"ten crops differ from the centre crop by only {fromCentre}");

        // A model that sees the whole image has no crops to take: ten-crop is its image and mirror.
        var y = x.narrow(2, 0, Crop).narrow(3, 0, Crop);
        Assert.True(Predictor.Softmax(plain, y, TestTimeAugmentation.TenCrop).allclose(Predictor.Softmax(plain, y, TestTimeAugmentation.Flip)));
        Assert.Equal(2, Predictor.Views(plain, TestTimeAugmentation.TenCrop));
    }

    [Fact]
    public void TrainingDrawsWholePixelRandomCropsOfUpToTheMarginAndResumesTheSameDraws()
    {
        var images = Images(24, 3);
        var crops = new OnlineAugmentation(MaxShift: 0, MaxRotationDegrees: 0, MaxZoom: 0) { CropMargin = Margin };
        using var warped = BatchAugmenter.Augment(images, crops, seed: 7, epoch: 2, batch: 5);
        using var again = BatchAugmenter.Augment(images, crops, seed: 7, epoch: 2, batch: 5);
        Assert.Equal(0f, (warped - again).abs().max().item<float>());
        var offsets = new List<(int, int)>();
        for (int i = 0; i < 24; i++)
        {
            // What the model sees (the centre) is an exact crop of the original at some offset within the margin.
            var seen = warped[i].narrow(1, Margin, Crop).narrow(2, Margin, Crop);
            var match = (from dy in Enumerable.Range(-Margin, 2 * Margin + 1)
                         from dx in Enumerable.Range(-Margin, 2 * Margin + 1)
                         let crop = images[i].narrow(1, Margin + dy, Crop).narrow(2, Margin + dx, Crop)
                         where (seen - crop).abs().max().item<float>() < 1e-4f
                         select (dy, dx)).ToList();
            Assert.Single(match);
            offsets.Add(match[0]);
        }
        Assert.True(offsets.Distinct().Count() >= 12, $"only {offsets.Distinct().Count()} distinct crops among 24 images");
        Assert.Contains(offsets, o => Math.Abs(o.Item1) == Margin || Math.Abs(o.Item2) == Margin); // the corners are reached
    }

    [Fact]
    public void GradCamOfACroppingModelCoversWhatItSeesAndLeavesTheMarginAtZero()
    {
        var (cropped, plain) = Twins();
        using var _ = cropped;
        using var __ = plain;
        using var scope = torch.NewDisposeScope();
        var x = Images(3, 4);
        var maps = Saliency.GradCam(cropped, x, cropped.CamLayer!);
        var eigen = Attributions.EigenCam(cropped, x, cropped.CamLayer!);
        foreach (var result in new[] { maps, eigen })
            for (int i = 0; i < 3; i++)
            {
                var map = result.Map(i).ToArray();
                for (int p = 0; p < Side * Side; p++)
                {
                    int r = p / Side, c = p % Side;
                    bool inMargin = r < Margin || r >= Side - Margin || c < Margin || c >= Side - Margin;
                    if (inMargin) Assert.Equal(0f, map[p]);
                }
                Assert.True(map.Max() > 0.99f, $"{result.Method}: the centre holds the map's maximum");
            }
    }
}
