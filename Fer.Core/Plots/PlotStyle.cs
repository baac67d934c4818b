using ScottPlot;
using SkiaSharp;

namespace Fer.Core.Plots;

/// <summary>Shared look of Fer's figures and the write-to-temporary-then-rename step for PNGs.</summary>
public static class PlotStyle
{
    public const int PanelWidth = 640, PanelHeight = 480;

    /// <summary>Train series in blue, validation in orange, then further series for comparisons.</summary>
    public static readonly Color[] Palette =
    [
        Color.FromHex("#1f77b4"), Color.FromHex("#ff7f0e"), Color.FromHex("#2ca02c"), Color.FromHex("#d62728"),
        Color.FromHex("#9467bd"), Color.FromHex("#8c564b"), Color.FromHex("#e377c2"), Color.FromHex("#7f7f7f"),
    ];

    /// <summary>Epoch axes show whole numbers only.</summary>
    public static void IntegerBottomTicks(Plot plot) =>
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };

    /// <summary>Renders through <paramref name="save"/> into a temporary .png next to <paramref name="pngPath"/>, then renames it into place.</summary>
    public static void SaveAtomically(string pngPath, Action<string> save)
    {
        var full = Path.GetFullPath(pngPath);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var tmp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileNameWithoutExtension(full)}.{Guid.NewGuid():N}.tmp.png");
        try
        {
            save(tmp);
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    /// <summary>Encodes a SkiaSharp figure as PNG, through <see cref="SaveAtomically"/>.</summary>
    public static void SavePng(SKSurface surface, string pngPath) => SaveAtomically(pngPath, tmp =>
    {
        using var image = surface.Snapshot();
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        using var stream = File.Create(tmp);
        data.SaveTo(stream);
    });
}
