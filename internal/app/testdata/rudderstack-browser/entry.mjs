// What a site's own bundle does with RudderStack's JavaScript SDK: TestBrowserRudderStackJS bundles this with
// esbuild into the page it serves, which loads the SDK with its configUrl and dataPlaneUrl set to Hearth.
import { RudderAnalytics } from '@rudderstack/analytics-js/bundled';

window.RudderAnalytics = RudderAnalytics;
