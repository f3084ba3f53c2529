using Irr.Demo;
using Xunit;

namespace Irr.Tests.Demo;

public class DemoReportTests
{
    // Wilson intervals from statsmodels 0.13.5, proportion_confint(k, n, method="wilson"):
    // (1, 4) → (0.0455872608097006, 0.6993581574175982); (7, 99) → (0.03467023028323469, 0.13881485078510197).
    [Theory]
    [InlineData(1, 4, "25.0% (1/4)", "4.6–69.9")]
    [InlineData(7, 99, "7.1% (7/99)", "3.5–13.9")]
    public void ARateCarriesItsCountAndWilsonInterval(int k, int n, string rate, string ci)
    {
        Assert.Equal(rate, DemoReport.Rate(k, n));
        Assert.Equal(ci, DemoReport.Ci(Irr.Eval.Intervals.Wilson(k, n)));
    }

    [Fact]
    public void ARateOfNothingIsADash()
    {
        Assert.Equal("—", DemoReport.Rate(0, 0));
        Assert.Equal("—", DemoReport.Ci(Irr.Eval.Intervals.Wilson(0, 0)));
    }
}
