using System.Globalization;
using System.Xml.Linq;
using Irr.Eval.Report;

namespace Irr.Tests.Eval.Report;

/// <summary>
/// The SVG charts, read back as XML: bar heights and point positions are converted to values through the
/// axis the chart draws (the positions of its "0" and "100" tick labels), and compared with the inputs.
/// </summary>
public class ChartsTests
{
    private static readonly XNamespace Ns = "http://www.w3.org/2000/svg";

    internal static XElement Parse(string svg) => XDocument.Parse(svg).Root!;

    internal static IEnumerable<XElement> WithClass(XElement root, string cls) =>
        root.Descendants().Where(e => ((string?)e.Attribute("class"))?.Split(' ').Contains(cls) == true);

    internal static double Num(XElement e, string attribute) => double.Parse((string)e.Attribute(attribute)!, CultureInfo.InvariantCulture);

    /// <summary>The coordinate of the tick labelled <paramref name="label"/> on the axis with class <paramref name="cls"/>.</summary>
    internal static double TickAt(XElement root, string cls, string label, string attribute) =>
        Num(WithClass(root, cls).Single(t => t.Value == label), attribute);

    // Text shown by a label, its lines (tspans) joined by spaces.
    private static string Shown(XElement text) =>
        text.Elements(Ns + "tspan").Any() ? string.Join(" ", text.Elements(Ns + "tspan").Select(t => t.Value)) : text.Value;

    [Theory]
    [InlineData(0, 100, 10, new[] { 0.0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100 })]
    [InlineData(0, 100, 5, new[] { 0.0, 20, 40, 60, 80, 100 })]
    [InlineData(0, 37, 5, new[] { 0.0, 10, 20, 30, 40 })]        // step 5 would need 8 intervals
    [InlineData(0, 0.73, 5, new[] { 0.0, 0.2, 0.4, 0.6, 0.8 })]  // step 0.1 would need 8
    [InlineData(-3, 7, 5, new[] { -5.0, 0, 5, 10 })]             // step 2: -4 … 8 is 6 intervals
    [InlineData(0.12, 0.31, 4, new[] { 0.1, 0.2, 0.3, 0.4 })]    // step 0.05: 0.1 … 0.35 is 5 intervals
    [InlineData(5, 5, 10, new[] { 5.0, 5.1, 5.2, 5.3, 5.4, 5.5, 5.6, 5.7, 5.8, 5.9, 6.0 })] // a point widens to [5, 6]
    [InlineData(0, 1e6, 10, new[] { 0.0, 1e5, 2e5, 3e5, 4e5, 5e5, 6e5, 7e5, 8e5, 9e5, 1e6 })]
    [InlineData(0, 30, 2, new[] { 0.0, 20, 40 })]                // step 10 needs 3, 20 needs 2
    public void NiceTicksUseOneTwoFiveSteps(double min, double max, int maxIntervals, double[] expected)
    {
        Assert.Equal(expected, Charts.NiceTicks(min, max, maxIntervals));
    }

    [Fact]
    public void ParetoFrontMatchesAHandDerivedSetWithTies()
    {
        ScatterPoint[] points =
        [
            new("A", 0.10, 0.50), // on: nothing has x ≤ 0.10 and y ≥ 0.50 strictly better (B is equal)
            new("B", 0.10, 0.50), // on: the same point as A; equal points do not dominate each other
            new("C", 0.05, 0.30), // on: the lowest harmful rate
            new("D", 0.10, 0.40), // off: A has the same x and a higher y
            new("E", 0.20, 0.50), // off: A has a lower x and the same y
            new("F", 0.30, 0.90), // on: the highest accuracy, lowest x among those
            new("G", 0.25, 0.60), // on: only F is more accurate, and F is more harmful
            new("H", 0.40, 0.90), // off: F has the same y and a lower x
        ];
        var front = Charts.ParetoFront(points).Select(i => points[i].Label);
        Assert.Equal(["A", "B", "C", "F", "G"], front);
    }

    [Fact]
    public void BarHeightsMatchTheRatesOnTheDrawnAxis()
    {
        string[] models = ["aligned", "fine-tuned", "IRR"];
        string[] sets = ["catqa", "harmbench"];
        double?[][] rates = [[0.02, 0.05], [0.5, 0.625], [0.1, null]];
        var root = Parse(Charts.GroupedBarChart("Harmful rate", models, sets, rates.Select(r => (IReadOnlyList<double?>)r).ToList(), "harmful rate (%)", "model"));

        double zero = TickAt(root, "tick-y", "0", "y"), hundred = TickAt(root, "tick-y", "100", "y");
        Assert.True(zero > hundred);
        var bars = WithClass(root, "bar").ToList();
        Assert.Equal(5, bars.Count); // one per (model, set) with a value
        for (int m = 0; m < models.Length; m++)
            for (int s = 0; s < sets.Length; s++)
            {
                var bar = bars.SingleOrDefault(b => (string?)b.Attribute("data-group") == models[m] && (string?)b.Attribute("data-series") == sets[s]);
                if (rates[m][s] is not { } rate)
                {
                    Assert.Null(bar);
                    continue;
                }
                Assert.NotNull(bar);
                Assert.Equal(rate * (zero - hundred), Num(bar, "height"), 0.011);
                Assert.Equal(zero, Num(bar, "y") + Num(bar, "height"), 0.011); // standing on the 0 line
            }
        Assert.Single(WithClass(root, "missing"));
        // Within a group the sets keep their order left to right, and groups follow the models' order.
        var xs = models.Select(m => bars.Where(b => (string?)b.Attribute("data-group") == m).Select(b => Num(b, "x")).ToList()).ToList();
        Assert.True(xs[0][0] < xs[0][1] && xs[0][1] < xs[1][0] && xs[1][1] < xs[2][0]);

        Assert.Equal(sets, WithClass(root, "legend-label").Select(t => t.Value));
        Assert.Equal(models, WithClass(root, "group-label").Select(Shown));
        Assert.Contains(root.Descendants(Ns + "text"), t => t.Value == "Harmful rate");
    }

    [Fact]
    public void APointOnAReferenceIsDrawnAboveItsSquare()
    {
        // Safe LoRA at the setting that changes nothing sits exactly on θ_F: its circle must not be hidden under θ_F's square.
        ChartSeries[] series =
        [
            new("IRR", [new ScatterPoint("s=0", 0.9, 0.8), new ScatterPoint("s=0.5", 0.1, 0.7)]),
            new("Safe LoRA", [new ScatterPoint("τ=0.25", 0.95, 0.9)]),
            new("θ_F", [new ScatterPoint("finetuned", 0.95, 0.9)], Connected: false),
        ];
        var root = Parse(Charts.SeriesChart("frontier", series, "harmful rate", "task score"));
        var marks = root.Descendants().Where(e => ((string?)e.Attribute("class"))?.Split(' ').Contains("point") == true).ToList();
        Assert.Equal(4, marks.Count);
        Assert.Equal("rect", marks[0].Name.LocalName); // the reference square first, beneath
        Assert.All(marks.Skip(1), m => Assert.Equal("circle", m.Name.LocalName));
        var circle = marks.Single(m => (string?)m.Attribute("data-label") == "τ=0.25");
        var square = marks[0];
        Assert.Equal(Num(square, "x") + 5, Num(circle, "cx"), 0.01); // the same place
        Assert.Equal(Num(square, "y") + 5, Num(circle, "cy"), 0.01);
    }

    [Fact]
    public void ValueLabelsNeverRunIntoTheirNeighbours()
    {
        // 10 series in 2 groups: bars 31.4 px wide, too narrow for "100.0%" across (37.3 px at 11 px): turned upright, 11 px
        // tall across; 2 series: wide bars, every value across. Every bar keeps its value.
        foreach (int n in new[] { 10, 2 })
        {
            var series = Enumerable.Range(0, n).Select(i => $"s{i}").ToList();
            var values = new[] { "m1", "m2" }.Select(_ => (IReadOnlyList<double?>)series.Select(_ => (double?)1.0).ToList()).ToList();
            var root = Parse(Charts.GroupedBarChart("t", ["m1", "m2"], series, values, "y", "x"));
            var labels = WithClass(root, "value").Select(v => (X: Num(v, "x"), Width: v.Attribute("transform") is null ? Svg.TextWidth(v.Value, 11) : 11)).OrderBy(v => v.X).ToList();
            for (int i = 1; i < labels.Count; i++)
                Assert.True(labels[i].X - labels[i].Width / 2 >= labels[i - 1].X + labels[i - 1].Width / 2, $"n = {n}: labels {i - 1} and {i} overlap");
            Assert.Equal(2 * n, labels.Count);
            Assert.Equal(n == 10, WithClass(root, "value").All(v => v.Attribute("transform") is not null));
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void LongModelNamesStayInsideThePicture(bool unbreakable)
    {
        // Wrapped onto lines when the words fit the group; rotated when one word alone is too wide.
        string[] models = ["fine-tuned on GSM8K for three whole epochs", "IRR w/o recalibration",
            unbreakable ? "supercalifragilisticexpialidocious-model-name" : "IRR-more s=0.3", "x"];
        var values = models.Select(_ => (IReadOnlyList<double?>)[0.1, 0.2, 0.3]).ToList();
        var root = Parse(Charts.GroupedBarChart("t", models, ["a", "b", "c"], values, "y", "x"));
        Assert.Equal(models, WithClass(root, "group-label").Select(Shown));
        double width = Num(root, "width"), height = Num(root, "height");
        foreach (var label in WithClass(root, "group-label"))
        {
            double x = Num(label, "x"), y = Num(label, "y");
            string? transform = (string?)label.Attribute("transform");
            Assert.Equal(unbreakable, transform is not null);
            if (transform is null)
            {
                foreach (var line in label.Elements(Ns + "tspan").Select(t => t.Value).DefaultIfEmpty(label.Value))
                    Assert.InRange(Svg.TextWidth(line, 12), 0, 2 * Math.Min(x, width - x));
                Assert.InRange(y + 15 * (label.Elements(Ns + "tspan").Count() - 1), 0, height - 20);
            }
            else
            {
                // "rotate(angle x y)" with the text ending at (x, y): it extends down and to the left.
                double angle = double.Parse(transform.Split('(', ' ')[1], CultureInfo.InvariantCulture) * Math.PI / 180;
                double length = Svg.TextWidth(label.Value, 12);
                Assert.InRange(x - length * Math.Cos(angle), 0, width);
                Assert.InRange(y - length * Math.Sin(angle), 0, height - 20); // sin < 0: below the anchor
            }
        }
    }

    [Fact]
    public void ScatterPointsMapBackToTheirValuesAndTheFrontIsMarked()
    {
        ScatterPoint[] points =
        [
            new("aligned", 0.02, 0.31), new("fine-tuned", 0.43, 0.625), new("IRR", 0.065, 0.605),
            new("IRR w/o recalibration", 0.074, 0.49), new("random removal", 0.343, 0.555), new("same as IRR", 0.065, 0.605),
        ];
        var root = Parse(Charts.ScatterChart("Safety vs utility", points, "harmful rate (%)", "task accuracy (%)"));
        double x0 = TickAt(root, "tick-x", "0", "x"), x100 = TickAt(root, "tick-x", "100", "x");
        double y0 = TickAt(root, "tick-y", "0", "y"), y100 = TickAt(root, "tick-y", "100", "y");

        var circles = WithClass(root, "point").ToList();
        Assert.Equal(points.Length, circles.Count);
        foreach (var p in points)
        {
            var c = circles.Single(e => (string?)e.Attribute("data-label") == p.Label);
            Assert.Equal(p.X, (Num(c, "cx") - x0) / (x100 - x0), 1e-4);
            Assert.Equal(p.Y, (Num(c, "cy") - y0) / (y100 - y0), 1e-4);
        }
        // Hand-derived: aligned (least harmful), IRR and its twin, fine-tuned (most accurate).
        var front = WithClass(root, "pareto").Select(e => (string)e.Attribute("data-label")!).ToList();
        Assert.Equal(["aligned", "fine-tuned", "IRR", "same as IRR"], front);
        // Points at the same place share one label (IRR and "same as IRR").
        Assert.Equal(points.Where(p => p.Label != "same as IRR").Select(p => p.Label == "IRR" ? "IRR, same as IRR" : p.Label), WithClass(root, "point-label").Select(t => t.Value));

        // The step line: M aligned H IRR.x V IRR.y H IRR.x V IRR.y H fine-tuned.x V fine-tuned.y.
        string[] d = ((string)WithClass(root, "pareto-front").Single().Attribute("d")!).Split(' ');
        var xs = new List<double>();
        var ys = new List<double>();
        for (int i = 0; i < d.Length; i += 2)
        {
            double v = double.Parse(d[i + 1], CultureInfo.InvariantCulture);
            switch (d[i])
            {
                case "M": xs.Add(v); ys.Add(double.Parse(d[i + 2], CultureInfo.InvariantCulture)); i++; break;
                case "H": xs.Add(v); break;
                case "V": ys.Add(v); break;
            }
        }
        double[] expectedX = [0.02, 0.065, 0.065, 0.43], expectedY = [0.31, 0.605, 0.605, 0.625];
        Assert.Equal(expectedX.Length, xs.Count);
        Assert.Equal(expectedY.Length, ys.Count);
        for (int i = 0; i < xs.Count; i++)
        {
            Assert.Equal(expectedX[i], (xs[i] - x0) / (x100 - x0), 1e-4);
            Assert.Equal(expectedY[i], (ys[i] - y0) / (y100 - y0), 1e-4);
        }
    }

    [Fact]
    public void PointLabelsStayInsideThePlot()
    {
        // Points in the corners and on the edges: labels must move inward.
        ScatterPoint[] points = [new("top-right corner label", 1, 1), new("bottom-left corner label", 0, 0), new("right edge label", 1, 0.5), new("top edge", 0.5, 1)];
        var root = Parse(Charts.ScatterChart("t", points, "x", "y"));
        double x0 = TickAt(root, "tick-x", "0", "x"), x100 = TickAt(root, "tick-x", "100", "x");
        double y0 = TickAt(root, "tick-y", "0", "y"), y100 = TickAt(root, "tick-y", "100", "y");
        foreach (var label in WithClass(root, "point-label"))
        {
            double width = Svg.TextWidth(label.Value, Num(label, "font-size"));
            double x = Num(label, "x"), left = (string?)label.Attribute("text-anchor") switch { "end" => x - width, "middle" => x - width / 2, _ => x };
            Assert.InRange(left, x0, x100 - width);
            Assert.InRange(Num(label, "y"), y100 + 8, y0); // the baseline leaves room for the text above it
        }
    }

    [Fact]
    public void LabelsAreEscaped()
    {
        Assert.Equal("a&lt;b &amp; &quot;c&quot; &apos;d&apos; &gt;", Svg.Escape("a<b & \"c\" 'd' >"));
        Assert.Equal("bell\uFFFDand nul\uFFFD", Svg.Escape("bell\aand nul\0"));

        const string nasty = "a<b & \"c\"";
        var bars = Parse(Charts.GroupedBarChart(nasty, [nasty, "x"], [nasty], [[0.5], [0.25]], "y", "x"));
        Assert.Contains(bars.Descendants(Ns + "text"), t => t.Value == nasty);
        Assert.Contains(WithClass(bars, "bar"), b => (string?)b.Attribute("data-group") == nasty && (string?)b.Attribute("data-series") == nasty);
        Assert.Equal(nasty, WithClass(bars, "legend-label").Single().Value);

        var scatter = Parse(Charts.ScatterChart("t", [new ScatterPoint(nasty, 0.1, 0.2), new ScatterPoint("bell\a", 0.2, 0.1)], "x", "y"));
        Assert.Equal([nasty, "bell\uFFFD"], WithClass(scatter, "point-label").Select(t => t.Value));
    }

    [Fact]
    public void NumbersUseTheInvariantCulture()
    {
        var previous = CultureInfo.CurrentCulture;
        try
        {
            // Invariant globalization has no de-DE; a clone with a decimal comma stands in for it.
            var comma = (CultureInfo)CultureInfo.InvariantCulture.Clone();
            comma.NumberFormat.NumberDecimalSeparator = ",";
            CultureInfo.CurrentCulture = comma;
            Assert.Equal("0,5", 0.5.ToString(CultureInfo.CurrentCulture));
            Assert.Equal("1234.57", Svg.Num(1234.5678));
            Assert.Equal("0", Svg.Num(-0.001));
            var root = Parse(Charts.ScatterChart("t", [new ScatterPoint("p", 0.123, 0.456)], "x", "y"));
            Assert.DoesNotContain(",", (string)WithClass(root, "point").Single().Attribute("cx")!);
        }
        finally
        {
            CultureInfo.CurrentCulture = previous;
        }
    }
}
