// What a site's own bundle does with Segment's browser SDK: TestBrowserSegmentAnalyticsJS bundles this with
// esbuild into the page it serves, which loads analytics.js with its cdnURL set to Hearth.
import { AnalyticsBrowser } from '@segment/analytics-next';

window.AnalyticsBrowser = AnalyticsBrowser;
