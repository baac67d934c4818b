using System.Diagnostics;
using System.Runtime.InteropServices;
using Fer.Core.Models;
using TorchSharp;
using static TorchSharp.torch;
using static Fer.Core.Explain.ExplainSupport;

namespace Fer.Core.Explain;

/// <summary>
/// Settings of activation maximisation. Each step moves the image along its activation gradient, normalised to unit
/// RMS per image (Chollet's "how convnets see the world", keras-vis), by <see cref="LearningRate"/> in 0..1 pixel
/// units, then applies the regularisers of Yosinski et al. 2015: a random roll of up to <see cref="JitterPixels"/>
/// before the forward pass, a decay of the image towards the model's input mean by the factor (1 - L2Decay), a
/// Gaussian blur of <see cref="BlurSigma"/> px every <see cref="BlurEvery"/> steps (0 turns it off), and optionally
/// a total-variation penalty in the objective. Images are kept in 0..1, the range the model was trained on.
/// <see cref="SelectedChannelsOnly"/> lets the batched ascent compute, at the layer's last convolution or dense
/// layer, only the filter each image is optimised for (see <see cref="SelectedChannels"/>); the images are the same.
/// </summary>
public sealed record FilterAscentOptions(int Steps = 200, double LearningRate = 0.05, double L2Decay = 1e-4,
    int JitterPixels = 2, double BlurSigma = 0.5, int BlurEvery = 4, double TotalVariation = 0.0, long Seed = 0,
    int? MaxFilters = null, bool SelectedChannelsOnly = true);

/// <summary>
/// The images that maximise each filter of a layer. <see cref="Images"/> holds F images of Side*Side values in 0..1,
/// each contrast-stretched for display between its 1st and 99th percentiles. Activations are the objective (mean activation of the filter's channel, or
/// the unit's value for a dense layer) at the start noise and at the final image, both without jitter.
/// </summary>
public sealed record FilterAscentResult(string Layer, float[] Images, float[] StartActivation, float[] FinalActivation,
    int Side, double Seconds)
{
    public int Count => StartActivation.Length;

    /// <summary>The number of ascent steps run (the seed report's "# Ascent Epoch").</summary>
    public int Steps { get; init; }

    /// <summary>Whether each image's own filter alone was computed at the layer's last convolution or dense layer.</summary>
    public bool SelectedChannelsOnly { get; init; }

    public ReadOnlySpan<float> Image(int filter) => Images.AsSpan(filter * Side * Side, Side * Side);
}

/// <summary>
/// Activation maximisation for every filter of a layer (the seed report's section 5). <see cref="Ascend"/> optimises
/// all filters as one batch, one forward and one backward per step, and (by default) computes at the layer's last
/// convolution or dense layer only the filter each image is optimised for; <see cref="AscendOneByOne"/> runs the same
/// procedure filter by filter through the whole layer. Every random draw depends only on (seed, filter index, step or
/// attempt) and the objective of image f depends only on image f (eval mode), so both give the same images up to
/// float rounding (over hundreds of steps, rounding can flip a max-pool's choice, so single pixels may then differ).
/// Gradients are taken with libtorch's native CPU convolutions (see <see cref="TorchRuntime"/>).
/// </summary>
public static class FilterVisualizer
{
    private const float StartGrey = 0.5f, StartNoise = 0.1f;

    public static FilterAscentResult Ascend(FerModel model, string layer, FilterAscentOptions options, torch.Device device)
    {
        var watch = Stopwatch.StartNew();
        using var exactGradients = TorchRuntime.NativeCpuConvolutions(); // oneDNN's input gradients: see TorchRuntime
        using var eval = new EvalModeScope(model);
        int filters = FilterCount(model, layer, options, device, requested: null);
        var selected = options.SelectedChannelsOnly ? SelectedObjective(model, layer, filters, device) : null;
        var (images, start, final) = Optimise(model, selected ?? FullObjective(model, layer),
            Enumerable.Range(0, filters).ToArray(), options, device);
        return new FilterAscentResult(layer, images, start, final, model.InputSide, watch.Elapsed.TotalSeconds)
        { Steps = options.Steps, SelectedChannelsOnly = selected is not null };
    }

    /// <summary>
    /// The same procedure one filter at a time, for the first <paramref name="filterCount"/> filters (all by default),
    /// each through the whole layer as the model computes it: the reference the batched ascent is tested against.
    /// </summary>
    public static FilterAscentResult AscendOneByOne(FerModel model, string layer, FilterAscentOptions options,
        torch.Device device, int? filterCount = null)
    {
        var watch = Stopwatch.StartNew();
        using var exactGradients = TorchRuntime.NativeCpuConvolutions();
        using var eval = new EvalModeScope(model);
        int filters = FilterCount(model, layer, options, device, filterCount);
        var objective = FullObjective(model, layer);
        int pixels = model.InputSide * model.InputSide;
        var images = new float[filters * pixels];
        var start = new float[filters];
        var final = new float[filters];
        for (int f = 0; f < filters; f++)
        {
            var (image, startOne, finalOne) = Optimise(model, objective, [f], options, device);
            image.CopyTo(images, f * pixels);
            start[f] = startOne[0];
            final[f] = finalOne[0];
        }
        return new FilterAscentResult(layer, images, start, final, model.InputSide, watch.Elapsed.TotalSeconds)
        { Steps = options.Steps };
    }

    private static int FilterCount(FerModel model, string layer, FilterAscentOptions options, Device device, int? requested)
    {
        CheckOptions(options);
        if (requested is < 1) throw new ArgumentOutOfRangeException(nameof(requested), "filterCount must be at least 1");
        model.LayerIndex(layer);
        var modelDevice = ModelDevice(model);
        if (modelDevice.type != device.type)
            throw new ArgumentException($"the model is on {modelDevice} but the ascent was asked to run on {device}", nameof(device));
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var probe = torch.zeros([1, 1, model.InputSide, model.InputSide], dtype: ModelDtype(model), device: device);
        var output = model.ForwardTo(layer, probe);
        if (output.dim() != 4 && output.dim() != 2)
            throw new ArgumentException(
                $"layer {layer} outputs [{string.Join(", ", output.shape)}]; filter ascent needs [N, C, h, w] or [N, C]", nameof(layer));
        int channels = (int)output.shape[1];
        return Math.Min(channels, Math.Min(options.MaxFilters ?? channels, requested ?? channels));
    }

    /// <summary>The objective of each image n of a batch: the mean activation of filter filters[n] of the layer.</summary>
    private delegate Tensor Objective(Tensor images, Tensor filters);

    /// <summary>Through the whole layer: every filter's output is computed and image n's own is picked.</summary>
    private static Objective FullObjective(FerModel model, string layer) =>
        (images, filters) => PickChannel(model.ForwardTo(layer, images), filters);

    /// <summary>
    /// Only image n's own filter at the last layer that mixes channels (a convolution or dense layer), then the
    /// channel-wise layers after it up to <paramref name="layer"/>. Null when that layer is not selectable, or when a
    /// check on two probe images disagrees with <see cref="FullObjective"/> (then the full computation is used).
    /// </summary>
    private static Objective? SelectedObjective(FerModel model, string layer, int filters, Device device)
    {
        int last = model.LayerIndex(layer), mixer = last;
        while (mixer >= 0 && SelectedChannels.IsChannelWise(model.Layers[mixer].Module)) mixer--;
        if (mixer < 0 || SelectedChannels.For(model.Layers[mixer].Module) is not { } select) return null;
        Objective objective = (images, channels) =>
        {
            var y = select(model.ForwardFirst(mixer, images), channels);
            for (int i = mixer + 1; i <= last; i++) y = model.Layers[i].Module.call(y);
            return y.dim() == 2 ? y.squeeze(1) : y.mean([1, 2, 3]);
        };

        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var probe = torch.rand([2, 1, model.InputSide, model.InputSide], generator: new torch.Generator(7, torch.CPU))
            .to(ModelDtype(model)).to(device);
        var channels = torch.tensor(new long[] { 0, filters - 1 }, device: device);
        try
        {
            var expected = FullObjective(model, layer)(probe, channels);
            var actual = objective(probe, channels);
            double tolerance = 1e-4 * Math.Max(1.0, expected.abs().max().item<float>());
            return actual.shape.SequenceEqual(expected.shape) && (actual - expected).abs().max().item<float>() <= tolerance
                ? objective : null;
        }
        catch (Exception e) when (e is ArgumentException or ExternalException)
        {
            return null;
        }
    }

    private static (float[] Images, float[] Start, float[] Final) Optimise(FerModel model, Objective objectiveOf, int[] filters,
        FilterAscentOptions options, Device device)
    {
        using var outer = torch.NewDisposeScope();
        int side = model.InputSide, count = filters.Length;
        var dtype = ModelDtype(model);
        var filterIndex = torch.tensor(filters.Select(f => (long)f).ToArray(), device: device);
        float centre = Math.Clamp(model.InputNormalization.Mean, 0f, 1f);
        var blurKernel = options.BlurSigma > 0 && options.BlurEvery > 0
            ? GaussianKernel(options.BlurSigma, dtype, device) : null;

        var image = StartImages(filters, side, options.Seed).to(dtype).to(device);
        image = RestartDeadImages(objectiveOf, image, filters, filterIndex, options.Seed);
        var startActivation = ActivationWithoutGrad(objectiveOf, image, filterIndex);
        for (int step = 0; step < options.Steps; step++)
        {
            using var scope = torch.NewDisposeScope();
            Tensor gradient;
            using (torch.enable_grad())
            {
                var leaf = image.detach().requires_grad_(true);
                var (dy, dx) = Jitter(options.Seed, step, options.JitterPixels);
                var shifted = dy == 0 && dx == 0 ? leaf : leaf.roll([dy, dx], [2, 3]);
                var objective = objectiveOf(shifted, filterIndex).sum();
                if (options.TotalVariation > 0)
                    objective = objective - TotalVariation(leaf).sum() * options.TotalVariation;
                gradient = torch.autograd.grad([objective], [leaf])[0];
            }
            var rms = gradient.square().mean([1, 2, 3], keepdim: true).sqrt().add(1e-8);
            var next = image + gradient / rms * options.LearningRate;
            if (options.L2Decay > 0) next = (next - centre) * (1 - options.L2Decay) + centre;
            if (blurKernel is not null && (step + 1) % options.BlurEvery == 0) next = Blur(next, blurKernel);
            next = next.clamp(0, 1).detach().MoveToOuterDisposeScope();
            image.Dispose();
            image = next;
        }
        var finalActivation = ActivationWithoutGrad(objectiveOf, image, filterIndex);

        var images = ToFloats(image);
        StretchContrast(images, count, side * side);
        return (images, startActivation, finalActivation);
    }

    /// <summary>
    /// Display contrast per image: values between the image's 1st and 99th percentiles are stretched to 0..1 (clipping
    /// the rest), so a few extreme pixels cannot turn the rest into one flat grey as min-max scaling would. An image
    /// (nearly) flat between those percentiles keeps its own 0..1 values, so a white optimum shows white.
    /// </summary>
    private static void StretchContrast(float[] images, int count, int size)
    {
        var sorted = new float[size];
        for (int i = 0; i < count; i++)
        {
            var image = images.AsSpan(i * size, size);
            image.CopyTo(sorted);
            Array.Sort(sorted);
            float low = sorted[(int)(0.01 * (size - 1))], high = sorted[(int)Math.Ceiling(0.99 * (size - 1))];
            if (!(high - low > 1e-3f)) continue;
            for (int k = 0; k < size; k++) image[k] = Math.Clamp((image[k] - low) / (high - low), 0f, 1f);
        }
    }

    private const int MaxRestarts = 8;

    /// <summary>
    /// A filter behind a ReLU that no pixel of its start image excites has a zero gradient and would never move (a
    /// "dead" start). Such images are redrawn as uniform 0..1 noise, from (seed, filter, attempt) alone, up to
    /// <see cref="MaxRestarts"/> times; a filter still dead after that keeps its last start image (activation 0).
    /// </summary>
    private static Tensor RestartDeadImages(Objective objectiveOf, Tensor image, int[] filters, Tensor filterIndex, long seed)
    {
        for (int attempt = 1; attempt <= MaxRestarts; attempt++)
        {
            bool[] dead;
            using (var scope = torch.NewDisposeScope())
            using (torch.enable_grad())
            {
                var leaf = image.detach().requires_grad_(true);
                var gradient = torch.autograd.grad([objectiveOf(leaf, filterIndex).sum()], [leaf])[0];
                dead = gradient.abs().amax([1, 2, 3]).eq(0).cpu().data<bool>().ToArray();
            }
            if (!dead.Contains(true)) break;
            for (int b = 0; b < filters.Length; b++)
            {
                if (!dead[b]) continue;
                var generator = new torch.Generator(Mix(seed, filters[b], salt: 2 + attempt), torch.CPU);
                using var redrawn = torch.rand([1, image.shape[1], image.shape[2], image.shape[3]], generator: generator);
                image[b].copy_(redrawn[0]);
            }
        }
        return image;
    }

    /// <summary>Mid-grey plus uniform noise of +-0.1, drawn from a generator seeded by (seed, filter) alone.</summary>
    private static Tensor StartImages(int[] filters, int side, long seed)
    {
        var rows = filters.Select(f =>
        {
            var generator = new torch.Generator(Mix(seed, f, salt: 2), torch.CPU);
            return torch.rand([1, 1, side, side], generator: generator).sub(0.5).mul(2 * StartNoise).add(StartGrey);
        }).ToList();
        return torch.cat(rows, 0);
    }

    /// <summary>The roll of step <paramref name="step"/>: one shift for the whole batch, from (seed, step) alone.</summary>
    private static (long Dy, long Dx) Jitter(long seed, int step, int pixels)
    {
        if (pixels <= 0) return (0, 0);
        var random = new Random(MixToInt(seed, step, salt: 1));
        return (random.Next(-pixels, pixels + 1), random.Next(-pixels, pixels + 1));
    }

    /// <summary>Per image b: the mean of channel filters[b] of a conv output, or unit filters[b] of a dense output.</summary>
    /// <remarks>The spatial mean is taken first and the channel picked from [N, C] with a plain [N, 1] index: gathering
    /// from [N, C, h, w] with an expanded (stride-0) index has a racy, non-deterministic backward on the CPU.</remarks>
    private static Tensor PickChannel(Tensor activation, Tensor filterIndex)
    {
        long n = activation.shape[0];
        var perChannel = activation.dim() == 2 ? activation : activation.mean([2, 3]);
        return perChannel.gather(1, filterIndex.view(n, 1)).squeeze(1);
    }

    private static float[] ActivationWithoutGrad(Objective objectiveOf, Tensor image, Tensor filterIndex)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        return ToFloats(objectiveOf(image, filterIndex));
    }

    /// <summary>Mean absolute difference between neighbours, per image.</summary>
    private static Tensor TotalVariation(Tensor image)
    {
        var vertical = (image[.., .., 1.., ..] - image[.., .., ..^1, ..]).abs().mean([1, 2, 3]);
        var horizontal = (image[.., .., .., 1..] - image[.., .., .., ..^1]).abs().mean([1, 2, 3]);
        return vertical + horizontal;
    }

    private static ScalarType ModelDtype(FerModel model) => model.buffers().First().dtype;

    private static void CheckOptions(FilterAscentOptions o)
    {
        if (o.Steps < 0) throw new ArgumentOutOfRangeException(nameof(o.Steps), "Steps must be >= 0");
        if (!(o.LearningRate > 0)) throw new ArgumentOutOfRangeException(nameof(o.LearningRate), "LearningRate must be > 0");
        if (!(o.L2Decay >= 0 && o.L2Decay < 1)) throw new ArgumentOutOfRangeException(nameof(o.L2Decay), "L2Decay must be in [0, 1)");
        if (o.JitterPixels < 0) throw new ArgumentOutOfRangeException(nameof(o.JitterPixels), "JitterPixels must be >= 0");
        if (!(o.BlurSigma >= 0)) throw new ArgumentOutOfRangeException(nameof(o.BlurSigma), "BlurSigma must be >= 0");
        if (o.BlurEvery < 0) throw new ArgumentOutOfRangeException(nameof(o.BlurEvery), "BlurEvery must be >= 0");
        if (!(o.TotalVariation >= 0)) throw new ArgumentOutOfRangeException(nameof(o.TotalVariation), "TotalVariation must be >= 0");
        if (o.MaxFilters is < 1) throw new ArgumentOutOfRangeException(nameof(o.MaxFilters), "MaxFilters must be >= 1");
    }
}
